"""`runbook audit ...`: what auditors run, months later."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runner import integrity, ledger, signing
from runner.audit import list_journals, verify_run
from runner.errors import EXIT_AUDIT, EXIT_OK, UsageError
from runner.report import RunSummary, export, summarize, timeline


def dispatch(args: argparse.Namespace, state_dir: Path) -> int:
    action = args.audit_command
    if action == "verify":
        return verify(state_dir, args.run_id, args.public_key, as_json=args.json)
    if action == "list":
        return list_runs_cmd(state_dir, args, as_json=args.json)
    if action == "show":
        print(timeline(_summary(state_dir, args.run_id)))
        return EXIT_OK
    if action == "export":
        return export_cmd(state_dir, args)
    if action == "report":
        from runner.commands.audit_report import report

        return report(state_dir, args)
    if action == "review":
        return review(
            state_dir, args.run_id, by=args.by, note=args.note, signing_key=args.signing_key
        )
    if action == "keygen":
        private, public = signing.keygen(Path(args.out))
        print(
            f"private key: {private} (0600; keep it away from the hosts that write logs)\npublic key:  {public}"
        )
        return EXIT_OK
    raise AssertionError(action)  # pragma: no cover


def verify(
    state_dir: Path, run_id: str | None, public_key: str | None, *, as_json: bool = False
) -> int:
    """Recompute chains, signatures and the ledger; name the first record that does not hold.

    Without RUN_ID: every journal (runs, checklists, approvals, reviews) and every ledger entry.
    """
    report = integrity.verify(state_dir, run_id, public_key)
    if run_id and not report.verdicts and not report.ledger:
        raise UsageError(f"no audit log for run {run_id} under {state_dir}")
    if as_json:
        rows = [
            {
                "kind": v.kind,
                "journal": v.journal,
                "run_id": v.run_id,
                "status": v.status,
                "ok": v.ok,
                "records": v.records,
                "reason": v.reason,
                "first_bad": v.first_bad,
            }
            for v in report.verdicts
        ]
        runs = [r for r in rows if r["kind"] == "run"]  # "runs": the key before other kinds
        doc = {"journals": rows, "runs": runs, "ledger": report.ledger, "ok": report.ok}
        print(json.dumps(doc, indent=2))
    else:
        if not report.verdicts and not report.ledger:
            print(f"no audit logs under {state_dir}")
        width = max((len(v.kind) for v in report.verdicts), default=0)
        for v in report.verdicts:
            print(f"{v.kind:<{width}}  {v.line()}")
        for problem in report.ledger:
            print(f"LEDGER: {problem}")
    return EXIT_OK if report.ok else EXIT_AUDIT


def _summary(state_dir: Path, run_id: str) -> RunSummary:
    report = integrity.verify(state_dir, run_id)
    if not report.verdicts:
        raise UsageError(f"no audit log for run {run_id} under {state_dir}")
    return summarize(report.verdicts[0], reviews(state_dir), report.ledger)


def reviews(state_dir: Path) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for kind, p in list_journals(state_dir, ("review",)):
        v = verify_run(p, keep=True, kind=kind)
        if v.ok:
            for e in v.events:
                out.setdefault(str(e["reviewed_run"]), []).append(e)
    return out


def all_summaries(state_dir: Path) -> list[RunSummary]:
    report = integrity.verify(state_dir, kinds=("run",))  # checklists etc. are not runs
    revs = reviews(state_dir)
    return [summarize(v, revs, report.ledger) for v in report.verdicts]


def _matches(s: RunSummary, a: argparse.Namespace) -> bool:
    return (
        (not a.runbook or s.runbook == a.runbook)
        and (not a.actor or a.actor in (s.actor, s.operator))
        and (not a.status or s.outcome == a.status)
        and (not a.since or (s.started or "") >= a.since)
        and (not a.until or (s.started or "") <= a.until)
        and (not a.ticket or s.ticket == a.ticket)
        and (not a.needs_review or s.needs_review)
    )


def list_runs_cmd(state_dir: Path, a: argparse.Namespace, *, as_json: bool = False) -> int:
    rows = [s for s in all_summaries(state_dir) if _matches(s, a)]
    if as_json:
        print(json.dumps([s.row() for s in rows], indent=2))
        return EXIT_OK
    for s in rows:
        r = s.row()
        flag = "  NEEDS REVIEW" if s.needs_review else ""
        print(
            f"{r['run_id']}  {r['runbook']}  {r['operator']}  {r['started']}  {r['duration']}s  {r['outcome']}  {r['verified']}{flag}"
        )
    if not rows:
        print("no runs match", file=sys.stderr)
    return EXIT_OK


def export_cmd(state_dir: Path, a: argparse.Namespace) -> int:
    if a.all == bool(a.run_id):
        raise UsageError("audit export: give a RUN_ID or --all")
    summaries = all_summaries(state_dir) if a.all else [_summary(state_dir, a.run_id)]
    text = export(summaries, a.format)
    if a.out:
        Path(a.out).write_text(text, encoding="utf-8")
        print(f"wrote {a.out}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def review(
    state_dir: Path, run_id: str, *, by: str, note: str | None, signing_key: str | None = None
) -> int:
    """Sign the retroactive review of a run (emergency changes need one, per ITIL / SOC 2)."""
    summary = _summary(state_dir, run_id)
    path = state_dir / "reviews" / f"review-{run_id}.jsonl"
    with ledger.appending(path, "review", state_dir, signing_key) as journal:
        journal.append(
            "run.reviewed",
            {
                "reviewed_run": run_id,
                "by": by,
                "meaning": "reviewed",
                "note": note,
                "run_last_hash": summary.last_hash,
                "verified": summary.verified,
            },
        )
    print(f"review of {run_id} signed by {by}")
    return EXIT_OK
