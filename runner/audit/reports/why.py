"""Why each transition of a run happened, in words an auditor can check against the record.

The states and transitions are runner/execution/lifecycle.py's; this adds, for display, what the command
behind a transition recorded beside it: the ticket and the saved plan a run started under, who
confirmed the manual step a resume went on from (signed or not), why a rollback was asked for, which manual
step a run waits at.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runner.audit.identity import label
from runner.execution.lifecycle import Transition

OPENERS = ("run.started", "run.resumed", "rollback.requested")


def _opener(events: Sequence[dict[str, Any]], t: Transition) -> dict[str, Any]:
    """The command record this transition answers: itself (logs before run.state), or the
    record just before its run.state record."""
    at = next((i for i, e in enumerate(events) if e.get("seq") == t.seq), None)
    if at is None:
        return {}
    for e in (events[at], events[at - 1] if at else {}):
        if e.get("event") in OPENERS:
            return e
    return {}


def _context(e: dict[str, Any]) -> list[str]:
    ev = e.get("event")
    if ev == "run.started":
        out = [f"ticket {e['ticket']}" if e.get("ticket") else "no ticket"]
        if e.get("plan_file"):
            out.append(f"saved plan {str(e.get('plan_hash'))[:16]}")
        if e.get("from_step"):
            out.append(f"from step {e['from_step']}: {e.get('from_reason') or 'no reason given'}")
        return out
    if ev == "run.resumed":  # who vouched for the manual step, and whether they signed it
        done = [
            f"confirmed: {c['step']} on {c['host']} by {label(c)}" for c in e.get("confirmed", [])
        ]
        return [*done, *map(str, e.get("notes") or [])]
    if ev == "rollback.requested":
        return [str(e.get("reason") or "rollback requested")]
    return []


def explain(events: Sequence[dict[str, Any]], t: Transition, previous_seq: int) -> str:
    parts = [t.reason] if t.reason and t.reason not in OPENERS else []
    for extra in _context(_opener(events, t)):
        if not any(extra in p for p in parts):  # the lifecycle's reason may say it already
            parts.append(extra)
    if t.state == "waiting":
        parts += [
            f"at {e.get('step')} on {e.get('host')}"
            for e in events
            if e.get("event") == "step.waiting" and previous_seq < e["seq"] < t.seq
        ]
    if not parts and t.state not in ("running", "rolling-back"):
        parts.append(f"exit {t.exit_code}")
    return "; ".join(parts)


def explained(
    events: Sequence[dict[str, Any]], history: Sequence[Transition]
) -> list[tuple[Transition, str]]:
    """Each transition with its explanation, oldest first."""
    out, prev = [], 0
    for t in history:
        out.append((t, explain(events, t, prev)))
        prev = t.seq
    return out
