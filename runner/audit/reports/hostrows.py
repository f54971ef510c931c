"""A run's records as rows per host: each attempt of a step or rollback, each check, skip,
manual step and confirmation, in the order they happened (the report's "Steps on HOST")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.audit import identity


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


NO_RESULT = "started; no result was recorded (the runner stopped during it)"


def per_host(events: list[dict[str, Any]]) -> dict[str, list[StepRow]]:
    """Per host, in order: each attempt of a step or rollback, each check, skip and manual step.

    An attempt's row stands where it started; until its result is read it says there is none,
    so a command the runner was killed during is not left out."""
    hosts: dict[str, list[StepRow]] = {}
    started: dict[tuple[str, str, str, Any], int] = {}  # (host, kind, step, attempt) -> row
    for e in events:
        host, ev = str(e.get("host") or ""), e["event"]
        if not host:
            continue
        rows = hosts.setdefault(host, [])
        kind = ev.split(".")[0]  # step | rollback
        key = (host, kind, str(e.get("step", "")), e.get("attempt"))
        if ev in ("step.started", "rollback.started") and e.get("kind") != "call":
            started[key] = len(rows)
            rows.append(
                StepRow(
                    e["ts"],
                    kind,
                    key[2],
                    e.get("attempt"),
                    str(e.get("command", "")),
                    reason=NO_RESULT,
                )
            )
            continue
        row = _row(e)
        if row is None:
            continue
        at = started.pop(key, None) if ev in ("step.finished", "rollback.finished") else None
        if at is None:
            rows.append(row)
        else:
            rows[at] = row
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
    if ev == "step.outcome" and e.get("status") not in ("ok", "skipped", None):
        # ok and skipped are in the attempt's own row or the skip's; a failure's verdict is not
        failed = e.get("status") == "failed"
        return StepRow(
            ts,
            "outcome",
            step,
            ok=False if failed else None,
            reason=f"{e['status']}: {e.get('reason', '')}",
        )
    if ev == "step.waiting":
        return StepRow(
            ts, "manual", step, reason=f"waiting for a person: {e.get('instructions', '')}"
        )
    if ev in ("manual.confirmed", "manual.declined"):
        vouched = (e.get("confirmed") or [None])[0]  # a terminal answer given with --ssh-key
        who = identity.label(vouched) if vouched else f"{e.get('by')} (unsigned)"
        return StepRow(
            ts, "manual", step, ok=ev == "manual.confirmed", reason=f"{ev.split('.')[1]} by {who}"
        )
    if ev == "step.resolved":
        return StepRow(ts, "resolved by hand", step, reason=f"by {e.get('by')}: {e.get('reason')}")
    if ev == "confirm":
        answer = "yes" if e.get("answer") else "no"
        return StepRow(
            ts, "confirm", step, reason=f"{e.get('question')}: {answer} ({e.get('via')})"
        )
    return None
