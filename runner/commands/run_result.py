"""`run --json`: what the run's audit log says of it, as one document (for CI and scripts).

Read back from the log rather than kept from the events: the result is the record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner.audit.chain import verify_run
from runner.audit.journal import run_path
from runner.execution.lifecycle import derive

# what a host's steps ended as, by the record that says so
_UNDO = {"rollback.done": "rolled_back", "rollback.failed": "undo_failed"}


def result(state_dir: Path, run_id: str, code: int) -> dict[str, Any]:
    """The run's id, state, exit code and log, and per host the runbook's own steps by their
    last outcome (`ok`, `failed`, `skipped`, ...) and what was rolled back (`rolled_back`,
    `undo_failed`)."""
    path = run_path(state_dir, run_id)
    verdict = verify_run(path, keep=True)
    last: dict[str, dict[str, str]] = {}  # host -> step -> its last outcome (a retry's, say)
    undone: dict[str, dict[str, list[str]]] = {}
    for e in verdict.events:
        host, step = e.get("host"), e.get("step")
        if not host or not step or e.get("caller"):  # the runbook's own steps only
            continue
        if e["event"] == "step.outcome":
            last.setdefault(host, {})[step] = str(e["status"])
        elif e["event"] in _UNDO:
            undone.setdefault(host, {}).setdefault(_UNDO[e["event"]], []).append(step)
    hosts: dict[str, dict[str, list[str]]] = {}
    for host in [*last, *(h for h in undone if h not in last)]:
        mine = hosts.setdefault(host, {})
        for step, status in last.get(host, {}).items():
            mine.setdefault(status, []).append(step)
        mine.update(undone.get(host, {}))
    return {
        "run_id": run_id,
        "state": derive(verdict.events).state,
        "exit_code": code,
        "audit_log": str(path),
        "log_verifies": verdict.ok,
        "hosts": hosts,
    }
