from __future__ import annotations

import json
from pathlib import Path

from runner.audit import list_runs as runs
from runner.audit import run_path, verify_run
from runner.errors import EXIT_AUDIT, EXIT_OK, UsageError


def verify(state_dir: Path, run_id: str | None, *, as_json: bool = False) -> int:
    """Recompute every chain; name the first record that does not hold. Exit 4 on any failure."""
    approvals = sorted((state_dir / "approvals").glob("*.jsonl"))
    paths = [run_path(state_dir, run_id)] if run_id else runs(state_dir) + approvals
    if run_id and not paths[0].exists():
        raise UsageError(f"no audit log for run {run_id} under {state_dir}")
    if not paths:
        print(f"no runs under {state_dir}")
        return EXIT_OK
    verdicts = [verify_run(p) for p in paths]
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "run_id": v.run_id,
                        "status": v.status,
                        "records": v.records,
                        "reason": v.reason,
                        "first_bad": v.first_bad,
                    }
                    for v in verdicts
                ],
                indent=2,
            )
        )
    else:
        for v in verdicts:
            print(v.line())
    return EXIT_OK if all(v.ok for v in verdicts) else EXIT_AUDIT


def list_runs(state_dir: Path, *, as_json: bool = False) -> int:
    rows = []
    for p in runs(state_dir):
        v = verify_run(p, keep=True)
        first = v.events[0] if v.events else {}
        last = v.events[-1] if v.events else {}
        rows.append(
            {
                "run_id": v.run_id,
                "runbook": first.get("runbook"),
                "actor": (first.get("actor") or {}).get("user"),
                "started": first.get("ts"),
                "outcome": last.get("outcome", "open")
                if last.get("event") == "run.finished"
                else "open",
                "verified": v.status,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(
                f"{r['run_id']}  {r['runbook']}  {r['actor']}  {r['started']}  {r['outcome']}  {r['verified']}"
            )
    return EXIT_OK
