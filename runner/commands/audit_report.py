"""`runbook audit report`: the auditor's document for a period (runner/audit/reports/)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.errors import EXIT_AUDIT, EXIT_OK, UsageError

FORMATS = ("html", "md", "pdf", "csv", "json")


def add_parser(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = actions.add_parser(
        "report", help="one document for a period: cover, summary, index, runs, checklists"
    )
    when = "(2026-11-24, 2026-11-24T18:00, 2026-11-24T18:00:00Z, today, yesterday, 3d, 12h)"
    r.add_argument("--since", metavar="WHEN", help=f"from this time on, UTC {when}")
    r.add_argument("--until", metavar="WHEN", help="up to this time (a date: that whole day)")
    r.add_argument("--runbook", help="only runs of this runbook (checklists left out)")
    r.add_argument("--ticket", help="only runs under this ticket (checklists left out)")
    r.add_argument(
        "--format",
        choices=FORMATS,
        default="html",
        help="html (default; prints a page per run), md, pdf (Chromium; needs -o), csv, json",
    )
    r.add_argument("-o", "--out", metavar="FILE", help="write here (pdf: required)")
    r.add_argument("--public-key", metavar="FILE", help="require every journal signed by this key")
    r.add_argument(
        "--allowed-signers",
        metavar="FILE",
        help="check people's signatures against this file (default: the policy's)",
    )


def report(state_dir: Path, a: argparse.Namespace) -> int:
    """Exit 0 when every journal in scope holds, 4 (as `audit verify`) when one does not: the
    document is written either way, and says which."""
    from runner.audit.reports import summary
    from runner.audit.reports.collect import Period, collect

    if getattr(a, "json", False):  # the global --json, as elsewhere
        a.format = "json"
    if a.format == "pdf" and not a.out:
        raise UsageError("audit report --format pdf needs -o FILE")
    rep = collect(
        state_dir,
        Period.parse(a.since, a.until),
        runbook=a.runbook,
        ticket=a.ticket,
        public_key=a.public_key,
        allowed_signers=a.allowed_signers,
    )
    if a.format in ("html", "pdf"):
        from runner.audit.reports.html import render

        text = render(rep)
    elif a.format == "md":
        from runner.audit.reports.md import render

        text = render(rep)
    else:
        text = summary.as_json(rep) if a.format == "json" else summary.as_csv(rep)
    if a.format == "pdf":
        from runner.audit.reports.pdf import print_pdf

        # Chromium lays out ~20 runs a second here (bench: 300 runs, 320 pages, 18 s)
        print_pdf(text, Path(a.out), timeout=120 + len(rep.runs) * 0.5)
    elif a.out:
        from runner.safefs import write_file

        write_file(Path(a.out), text.encode("utf-8"), 0o644)  # as `audit export -o`
    else:
        sys.stdout.write(text)
    if a.out:
        print(
            f"wrote {a.out}: {len(rep.runs)} runs, {len(rep.checklists)} checklist instances; {rep.verdict}"
        )
    return EXIT_OK if rep.ok else EXIT_AUDIT
