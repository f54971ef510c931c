"""A run's state and lifecycle transitions, read from its journal.

PRIVATE STAND-IN: issue 12 defines the run lifecycle once (runner/lifecycle.py); until it lands,
the report derives the least it needs here. Replace this module with a call to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Transition:
    ts: str
    state: str
    who: str
    why: str
    event: str


def _who(e: dict[str, Any]) -> str:
    return str(e.get("by") or e.get("operator") or (e.get("actor") or {}).get("user", ""))


def _why(e: dict[str, Any]) -> str | None:
    """The transition an event makes, and why; None for events that change no state."""
    ev = e["event"]
    if ev == "run.started":
        parts = [f"ticket {e['ticket']}" if e.get("ticket") else "no ticket"]
        if e.get("plan_file"):
            parts.append(f"saved plan {str(e.get('plan_hash', ''))[:16]}")
        if e.get("from_step"):
            parts.append(f"from step {e['from_step']}: {e.get('from_reason') or 'no reason given'}")
        return "; ".join(parts)
    if ev == "step.waiting":
        return f"manual step {e.get('step')} on {e.get('host')}"
    if ev == "run.resumed":
        done = [
            f"{c['step']} on {c['host']} confirmed by {c['by']}" for c in e.get("confirmed", [])
        ]
        return "; ".join(done) or "resumed"
    if ev == "rollback.requested":
        return str(e.get("reason") or "rollback requested")
    if ev == "rollback.begin":
        return f"undo {', '.join(e.get('steps', []))} on {e.get('host')}"
    if ev == "run.finished":
        bad = [f"{h}: {r['reason']}" for h, r in (e.get("hosts") or {}).items() if r.get("reason")]
        return "; ".join(bad) or f"exit {e.get('exit_code')}"
    if ev in ("run.aborted", "run.error", "interrupt"):
        return str(e.get("reason") or e.get("signal") or ev)
    return None


_STATE = {
    "run.started": "running",
    "step.waiting": "waiting",
    "run.resumed": "running",
    "rollback.requested": "rolling back",
    "rollback.begin": "rolling back",
    "run.aborted": "aborted",
    "run.error": "error",
    "interrupt": "interrupted",
}


def derive(events: list[dict[str, Any]]) -> tuple[str, list[Transition]]:
    """(the run's current state, every transition in order). A run's state is its last one."""
    out: list[Transition] = []
    operator = ""  # who ran the command that appended these records
    for e in events:
        why = _why(e)
        if why is None:
            continue
        state = str(e.get("outcome")) if e["event"] == "run.finished" else _STATE[e["event"]]
        if e["event"] in ("run.started", "run.resumed", "rollback.requested"):
            operator = _who(e)
        who = operator or _who(e)
        if out and out[-1].state == state:
            continue  # e.g. rollback.begin of each host, run.finished of a waiting run
        out.append(Transition(e["ts"], state, who, why, e["event"]))
    return (out[-1].state if out else "open"), out
