from __future__ import annotations

import sys
from pathlib import Path

from runner import inventory as inventory_mod
from runner.errors import EXIT_OK, EXIT_USAGE, InvalidInput, Problem
from runner.loader import Catalog, discover


def validate(refs: list[str], *, inventory: str | None = None) -> int:
    """Report every problem of every file at once; exit 2 if there is any."""
    known: set[str] = set()
    if inventory:
        known = inventory_mod.load(inventory).all_var_names()
    targets: list[str] = []
    for ref in refs or [str(p) for p in discover("runbook")]:
        p = Path(ref)
        targets += [str(f) for f in sorted(p.glob("*.y*ml"))] if p.is_dir() else [ref]
    if not targets:
        print("runbook: no runbooks found (./runbooks or RUNBOOK_PATH)", file=sys.stderr)
        return EXIT_USAGE
    catalog = Catalog()
    problems: list[Problem] = []
    for ref in targets:
        try:
            rb = catalog.load_checked(ref, known)
            print(f"ok  {rb.file}")
        except InvalidInput as exc:
            problems += exc.problems
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
    return EXIT_USAGE if problems else EXIT_OK
