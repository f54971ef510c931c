from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from runner.checklists import definition as checklist_mod
from runner.errors import EXIT_OK, EXIT_USAGE, Error, InvalidInput, Problem
from runner.format import inventory as inventory_mod
from runner.format.loader import Catalog, discover
from runner.format.source import load_file


def validate(
    refs: list[str], *, inventory: str | Sequence[str] | None = None, as_json: bool = False
) -> int:
    """Report every problem of every runbook and checklist at once; exit 2 if there is any.
    `--json`: one document on stdout, `{"ok", "valid": [files], "problems": [{file, line, col,
    path, message}]}`, for editors and CI."""
    known: set[str] = set()
    if inventory:
        known = inventory_mod.load(inventory).all_var_names()
    targets: list[str] = []
    defaults = [str(p) for p in discover("runbook")] + [str(p) for p in discover("checklist")]
    for ref in refs or defaults:
        p = Path(ref)
        targets += [str(f) for f in sorted(p.glob("*.y*ml"))] if p.is_dir() else [ref]
    if not targets:
        print(
            "runbook: no runbooks or checklists found (./runbooks, ./checklists or RUNBOOK_PATH)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    catalog = Catalog()
    problems: list[Problem] = []
    valid: list[str] = []
    for ref in targets:
        try:
            if _is_checklist(ref):
                found = _checklist(ref, catalog)
                problems += found
                valid += [] if found else [ref]
            else:
                rb = catalog.load_checked(ref, known)
                valid.append(rb.file)
                if not as_json:
                    print(f"ok  {rb.file}")
        except InvalidInput as exc:
            problems += exc.problems
    if not refs:
        problems += _policy()
    if as_json:
        placed = [{**asdict(p.location), "message": p.message} for p in problems]
        print(json.dumps({"ok": not problems, "valid": valid, "problems": placed}, indent=2))
    else:
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"{len(problems)} problem(s)", file=sys.stderr)
    return EXIT_USAGE if problems else EXIT_OK


def _is_checklist(ref: str) -> bool:
    """A file under checklists/, a file whose top key is `checklist:`, or a checklist's name."""
    p = Path(ref)
    if p.suffix in (".yaml", ".yml") or "/" in ref:
        if p.parent.name == "checklists":
            return True
        try:
            data = load_file(p).data
        except InvalidInput:
            return False  # reported by the runbook loader, with its position
        return isinstance(data, dict) and "checklist" in data and "runbook" not in data
    try:
        catalog_hit = Catalog().resolve(ref)
    except InvalidInput:
        catalog_hit = None
    return catalog_hit is None and any(c.stem == ref for c in discover("checklist"))


def _checklist(ref: str, catalog: Catalog) -> list[Problem]:
    """Schema and semantics, then each linked runbook: it exists and has the params given."""
    c = checklist_mod.load(ref)
    doc = load_file(checklist_mod.resolve(ref))
    problems: list[Problem] = []
    for n, item in enumerate(c.items):
        if item.runbook is None:
            continue
        where = ("items", n, "runbook")
        try:
            rb = catalog.load(item.runbook)
        except (InvalidInput, Error) as exc:
            first = exc.problems[0].message if isinstance(exc, InvalidInput) else str(exc)
            problems.append(doc.problem(where, f"cannot load runbook '{item.runbook}': {first}"))
            continue
        for key, _ in item.with_:
            if rb.param(key) is None:
                problems.append(
                    doc.problem(
                        ("items", n, "with", key), f"'{rb.id}' has no param '{key}'", key=True
                    )
                )
    if not problems:
        print(f"ok  {c.file}")
    return problems


def _policy() -> list[Problem]:
    """The policy in force (policy.yaml or RUNBOOK_POLICY), when there is one."""
    from runner.audit import policy
    from runner.errors import Location

    try:
        found = policy.load()
    except InvalidInput as exc:
        return exc.problems
    except Error as exc:
        return [Problem(Location(os.environ.get("RUNBOOK_POLICY") or "policy.yaml"), str(exc))]
    if found.file is not None:
        print(f"ok  {found.file}")
    return []
