"""`runbook audit ...`: what auditors run, months later."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from runner.audit import (
    checkpoint,
    collected,
    identity,
    integrity,
    ledger,
    policy,
    reviews,
    ship,
    signing,
)
from runner.audit.chain import verify_run
from runner.audit.exports import export
from runner.audit.journal import list_journals, relative_name
from runner.audit.report import (
    RunSummary,
    missing,
    printable,
    summaries,
    summarize,
    timeline,
)
from runner.checklists import signoffs
from runner.errors import EXIT_AUDIT, EXIT_FAILED, EXIT_OK, UsageError
from runner.safefs import write_file


def dispatch(args: argparse.Namespace, state_dir: Path) -> int:
    action = args.audit_command
    if action == "verify":
        return verify(
            state_dir,
            args.run_id,
            args.public_key,
            as_json=args.json,
            allowed_signers=args.allowed_signers,
            checkpoint_file=args.checkpoint,
            collected_file=args.collected,
        )
    if action == "ship":
        return ship_cmd(state_dir, args.to, args.ca)
    if action == "checkpoint":
        doc = checkpoint.make(state_dir, signing_key=args.signing_key, ssh_key=args.ssh_key)
        checkpoint.write(doc, Path(args.out))
        how = [identity.label(doc)] + ([f"key {doc['key_id']}"] if "signature" in doc else [])
        print(
            f"checkpoint {args.out}: ledger of {doc['records']} records, last hash "
            f"{doc['last_hash'][:16]}, {doc['at']}, by {', '.join(how)}; keep it out of this "
            "machine's reach (docs/audit.md)"
        )
        return EXIT_OK
    if action == "list":
        return list_runs_cmd(state_dir, args, as_json=args.json)
    if action == "show":
        summary = _summary(state_dir, args.run_id)
        print(timeline(summary))
        return _verdict_code([summary])
    if action == "export":
        return export_cmd(state_dir, args)
    if action == "report":
        from runner.commands.audit_report import report

        return report(state_dir, args)
    if action == "review":
        return review(
            state_dir,
            args.run_id,
            by=args.by,
            note=args.note,
            signing_key=args.signing_key,
            ssh_key=args.ssh_key,
        )
    if action == "keygen":
        private, public = signing.keygen(Path(args.out))
        print(
            f"private key: {private} (0600; keep it away from the hosts that write logs)\npublic key:  {public}"
        )
        return EXIT_OK
    raise AssertionError(action)  # pragma: no cover


def verify(
    state_dir: Path,
    run_id: str | None,
    public_key: str | None,
    *,
    as_json: bool = False,
    allowed_signers: str | None = None,
    checkpoint_file: str | None = None,
    collected_file: str | None = None,
    problems: list[str] | None = None,
) -> int:
    """Recompute chains, signatures and the ledger; name the first record that does not hold.

    Without RUN_ID: every journal (runs, checklists, approvals, reviews) and every ledger entry.
    Every person's signature (identity.py) is checked against the allowed signers: the
    `allowed_signers` file given, else the policy's. `collected_file`: a collector's copy of
    the journals (collected.py) is verified instead of the state dir.
    """
    if collected_file:
        with tempfile.TemporaryDirectory(prefix="runbook-collected-") as tmp:
            problems = collected.rebuild(Path(collected_file), Path(tmp))
            return verify(
                Path(tmp),
                run_id,
                public_key,
                as_json=as_json,
                allowed_signers=allowed_signers,
                checkpoint_file=checkpoint_file,
                problems=problems,
            )
    report = integrity.verify(state_dir, run_id, public_key)
    report.ledger += problems or []
    allowed = Path(allowed_signers) if allowed_signers else policy.load().allowed
    signoffs.check_verdicts(report.verdicts, allowed)
    report.ledger += signoffs.check_ledger(state_dir, allowed)
    if checkpoint_file:
        report.ledger += checkpoint.check(state_dir, checkpoint_file, public_key)
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
                "state": v.state or None,  # a run's lifecycle state
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
        if run_id in report.missing:  # the ledger knows it: deleted, not a typo
            return missing(run_id, report.missing[run_id])
        raise UsageError(f"no audit log for run {run_id} under {state_dir}")
    return summarize(report.verdicts[0], review_records(state_dir), report.ledger, policy.load())


def review_records(state_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Each run's review records, each with `vouched` (reviews.py judges whether it counts)."""
    found = [
        verify_run(p, keep=True, kind=k, journal=relative_name(state_dir, p))
        for k, p in list_journals(state_dir, ("review",))
    ]
    return reviews.read(state_dir, found, None)


def all_summaries(state_dir: Path) -> list[RunSummary]:
    report = integrity.verify(state_dir, kinds=("run",))  # checklists etc. are not runs
    return summaries(report, review_records(state_dir), policy.load())


def _verdict_code(shown: list[RunSummary]) -> int:
    """A reader's exit: 4 (and a line on stderr) when a run it shows does not verify."""
    bad = [s.run_id for s in shown if not s.holds]
    if not bad:
        return EXIT_OK
    print(
        f"audit: {len(bad)} of the runs shown do not verify: runbook audit verify says why",
        file=sys.stderr,
    )
    return EXIT_AUDIT


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
    from runner.audit import timespec

    if a.since:
        a.since = timespec.parse(a.since, flag="--since")
    if a.until:
        a.until = timespec.parse(a.until, flag="--until", end=True)
    rows = [s for s in all_summaries(state_dir) if _matches(s, a)]
    if as_json:
        print(json.dumps([s.row() for s in rows], indent=2))
        return _verdict_code(rows)
    for s in rows:
        r = {k: "-" if v is None else v for k, v in s.row().items()}  # a deleted run's unknowns
        flag = "  NEEDS REVIEW" if s.needs_review else ""
        print(
            printable(
                f"{r['run_id']}  {r['runbook']}  {r['operator']}  {r['started']}  {r['duration']}s  {r['outcome']}  {r['verified']}{flag}"
            )
        )
    if not rows:
        print("no runs match", file=sys.stderr)
    return _verdict_code(rows)


def export_cmd(state_dir: Path, a: argparse.Namespace) -> int:
    if a.all == bool(a.run_id):
        raise UsageError("audit export: give a RUN_ID or --all")
    shown = all_summaries(state_dir) if a.all else [_summary(state_dir, a.run_id)]
    text = export(shown, a.format)
    if a.out:
        write_file(Path(a.out), text.encode("utf-8"), 0o644)  # a report, meant to be passed on
        print(f"wrote {a.out}")
    else:
        sys.stdout.write(text)
    return _verdict_code(shown)


def review(
    state_dir: Path,
    run_id: str,
    *,
    by: str | None,
    note: str | None,
    signing_key: str | None = None,
    ssh_key: str | None = None,
) -> int:
    """Sign the retroactive review of a run (emergency changes need one, per ITIL / SOC 2)."""
    summary = _summary(state_dir, run_id)
    rules = policy.load()
    record = rules.vouch(
        {
            "vouches": "run.reviewed",
            "reviewed_run": run_id,
            "meaning": "reviewed",
            "note": note,
            "run_last_hash": summary.last_hash,
            "verified": summary.verified,
        },
        key=ssh_key,
        claimed=by,
    )
    why = reviews.why_not(rules, {**record, "vouched": True}, summary.operator)
    if why:  # what the readers would not count is not written (reviews.py)
        raise UsageError(f"{record['by']} may not review run {run_id}: {why}")
    path = state_dir / "reviews" / f"review-{run_id}.jsonl"
    with ledger.appending(path, "review", state_dir, signing_key) as journal:
        journal.append("run.reviewed", record)
    print(f"review of {run_id} signed by {identity.label(record)}")
    return EXIT_OK


def ship_cmd(state_dir: Path, to: str | None, ca: str | None) -> int:
    """Send what was not sent yet; exit 1 (what was taken is remembered) if the collector fails."""
    dest = ship.target(to, ca)
    try:
        sent = ship.ship(state_dir, dest)
    except ship.ShipError as exc:
        print(f"runbook: {exc}; run `runbook audit ship` again to send the rest", file=sys.stderr)
        return EXIT_FAILED
    print(f"shipped {sent} records to {dest.url}" if sent else f"nothing new for {dest.url}")
    return EXIT_OK
