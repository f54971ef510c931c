"""A run's records as rows per host: each attempt of a step or rollback, each check, skip,
manual step and confirmation, in the order they happened (the report's "Steps on HOST")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StepRow:
    """One command (or skip, manual step, confirmation) of a run on one host."""

    ts: str
    kind: str  # step | rollback | precondition | verify | ... | skipped | manual | outcome
    step: str
    attempt: int | None = None
    command: str = ""
    exit: Any = None
    duration: float | None = None
    ok: bool | None = None
    reason: str = ""
    stdout: dict[str, Any] = field(default_factory=dict)
    stderr: dict[str, Any] = field(default_factory=dict)

    @property
    def css(self) -> str:
        return " ".join(
            c for c, on in (("fail", self.ok is False), ("rollback", "rollback" in self.kind)) if on
        )


def per_host(events: list[dict[str, Any]]) -> dict[str, list[StepRow]]:
    """Per host, in order: each attempt of a step or rollback, each check, skip and manual step."""
    hosts: dict[str, list[StepRow]] = {}
    for e in events:
        row = _row(e)
        if row is not None and e.get("host"):
            hosts.setdefault(str(e["host"]), []).append(row)
    return hosts


def _row(e: dict[str, Any]) -> StepRow | None:
    ev, step, ts = e["event"], str(e.get("step", "")), e["ts"]
    if ev in ("step.finished", "rollback.finished", "check"):
        kind = {"step.finished": "step", "rollback.finished": "rollback"}.get(ev)
        return StepRow(
            ts,
            kind or str(e.get("scope", "check")),
            step or str(e.get("name", "")),
            e.get("attempt"),
            str(e.get("command", "")),
            e.get("exit"),
            e.get("duration"),
            bool(e.get("ok")),
            str(e.get("reason") or ""),
            e.get("stdout") or {},
            e.get("stderr") or {},
        )
    if ev == "step.skipped":
        return StepRow(ts, "skipped", step, reason=str(e.get("reason", "")))
    if ev in ("rollback.none", "rollback.skipped", "rollback.failed"):
        return StepRow(
            ts,
            ev.replace(".", " "),
            step,
            ok=False if ev == "rollback.failed" else None,
            reason=str(e.get("reason", "")),
        )
    if ev == "step.outcome" and e.get("status") not in ("ok", None):
        return StepRow(
            ts, "outcome", step, ok=False, reason=f"{e['status']}: {e.get('reason', '')}"
        )
    if ev == "step.waiting":
        return StepRow(
            ts, "manual", step, reason=f"waiting for a person: {e.get('instructions', '')}"
        )
    if ev in ("manual.confirmed", "manual.declined"):
        return StepRow(
            ts,
            "manual",
            step,
            ok=ev == "manual.confirmed",
            reason=f"{ev.split('.')[1]} by {e.get('by')}",
        )
    if ev == "confirm":
        answer = "yes" if e.get("answer") else "no"
        return StepRow(
            ts, "confirm", step, reason=f"{e.get('question')}: {answer} ({e.get('via')})"
        )
    return None
