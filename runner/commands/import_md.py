"""`runbook import FILE.md [-o DIR] [--dry-run]` and `runbook import --check FILE.md [-o DIR]`."""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from runner.checklists import definition as checklist_mod
from runner.errors import EXIT_FAILED, EXIT_OK, InvalidInput, Problem, UsageError
from runner.format.loader import Catalog
from runner.importer import emit
from runner.importer.build import ITEM, MANUAL, RUN, SKIPPED, Library, build


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE.md", help="a Markdown runbook")
    p.add_argument(
        "-o", "--out", default=".", metavar="DIR", help="writes DIR/runbooks and DIR/checklists"
    )
    p.add_argument("--dry-run", action="store_true", help="report only; write nothing")
    p.add_argument(
        "--check",
        action="store_true",
        help="list the sections changed in FILE.md since DIR's files were imported (exit 1)",
    )


def dispatch(args: argparse.Namespace) -> int:
    md = Path(args.file)
    try:
        text = md.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise UsageError(f"cannot read {md}: {why}") from None
    lib = build(text)
    outdir = Path(args.out)
    if args.check:
        return _check(lib, md.name, outdir, as_json=args.json)
    if args.dry_run:
        with tempfile.TemporaryDirectory(prefix="runbook-import-") as tmp:
            emit.write(lib, md.name, outdir, dry_run=True)  # refuses what a real import would
            written = emit.write(lib, md.name, Path(tmp), dry_run=False)
            _validate(written)
    else:
        _validate(emit.write(lib, md.name, outdir, dry_run=False))
    _report(lib, md.name, outdir, dry_run=args.dry_run, as_json=args.json)
    return EXIT_OK


def _validate(paths: list[Path]) -> None:
    """Every file written must pass `runbook validate`; a failure is the importer's bug, and
    says so rather than leaving a library that cannot run."""
    problems: list[Problem] = []
    catalog = Catalog()
    for path in paths:
        try:
            if path.parent.name == "checklists":
                checklist_mod.load(str(path))
            else:
                catalog.load_checked(str(path))
        except InvalidInput as exc:
            problems += exc.problems
    if problems:
        raise InvalidInput(problems)


def summary(lib: Library) -> dict[str, int]:
    fences = {e.fence for e in lib.report if e.fence}
    count = Counter(e.outcome for e in lib.report)
    return {
        "shell_fences": len(lib.shell_fences),
        "shell_fences_accounted": len(fences),
        "runbooks": sum(o.kind == "runbook" for o in lib.outputs),
        "checklists": sum(o.kind == "checklist" for o in lib.outputs),
        "run_steps": count[RUN],
        "manual_steps": count[MANUAL],
        "manual_from_shell": sum(e.outcome == MANUAL and bool(e.fence) for e in lib.report),
        "checklist_items": count[ITEM],
        "skipped": count[SKIPPED],
    }


def _report(lib: Library, source: str, outdir: Path, *, dry_run: bool, as_json: bool) -> None:
    s = summary(lib)
    if as_json:
        doc = {
            "source": source,
            "out": str(outdir),
            "dry_run": dry_run,
            "files": [o.path for o in lib.outputs],
            "summary": s,
            "lifted": [asdict(x) for x in lib.lifts],
            "report": [asdict(e) for e in sorted(lib.report, key=lambda e: e.lines)],
        }
        print(json.dumps(doc, indent=2))
        return
    for e in sorted(lib.report, key=lambda e: e.lines):
        where = f"{e.lines[0]}" if e.lines[0] == e.lines[1] else f"{e.lines[0]}-{e.lines[1]}"
        print(f"{source}:{where:<9} {e.outcome:<14} {e.target or '-':<58} {e.detail}")
    for x in lib.lifts:
        kind = "host_var" if x.host else "var"
        print(f"lifted: {x.value} ({x.count} times) -> {kind} {x.name}")
    verb = "would write" if dry_run else "wrote"
    print(
        f"{s['shell_fences']} shell fences -> {s['run_steps']} run steps and "
        f"{s['manual_from_shell']} manual; {s['manual_steps'] - s['manual_from_shell']} numbered "
        f"instructions -> manual; {s['checklist_items']} checklist items; {s['skipped']} skipped. "
        f"{verb} {s['runbooks']} runbooks and {s['checklists']} checklists under {outdir}/"
    )


def _check(lib: Library, source: str, outdir: Path, *, as_json: bool) -> int:
    drift, in_step = emit.check(lib, source, outdir)
    if as_json:
        print(json.dumps({"drift": [asdict(d) for d in drift], "in_step": in_step}, indent=2))
    else:
        for d in drift:
            edited = "  (the file was edited since the import)" if d.edited else ""
            print(
                f"{d.state:<8} {d.file:<48} {source}:{d.lines[0]}-{d.lines[1]}  {d.section}{edited}"
            )
        print(f"{len(drift)} section(s) drifted from {source}; {in_step} file(s) in step")
    return EXIT_FAILED if drift else EXIT_OK
