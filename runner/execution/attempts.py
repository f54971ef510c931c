"""Action execution with retries: one action on one host, again after `delay` up to `retries`
times until it holds, each attempt announced and recorded as events. Steps, their checks and
undos all run here; what an action is run for (`Purpose`) names its events and says whether an
interrupt stops it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

from runner.execution.actions import Outcome, cut_note, execute
from runner.execution.events import Bus
from runner.execution.executors.base import (
    CommandResult,
    ConnectionFailed,
    Digests,
    OutputDigest,
    StreamOutput,
)
from runner.execution.executors.pool import Executors
from runner.execution.interrupts import Interrupt
from runner.execution.stepevents import (
    ActionFinished,
    ActionStarted,
    CheckFinished,
    UndoFinished,
    UndoStarted,
)
from runner.format.inventory import Host
from runner.format.model import Action, Check, Runbook
from runner.format.render import RenderError, render
from runner.planning.planned import Context, Plan


@dataclass(frozen=True)
class Purpose:
    """What an action runs for: a step's own action, one undo of a rollback, or a check."""

    kind: Literal["step", "rollback", "check"]
    scope: str = ""  # a check's: precondition, step-precondition, verify, rollback-verify
    name: str = ""  # the undo's or the check's name
    caller: str | None = None  # the calling step, for a step of a called runbook

    @property
    def forward(self) -> bool:
        """Forward work stops at an interrupt; a rollback and its verification never do."""
        return self.kind != "rollback" and self.scope != "rollback-verify"


def digest(s: StreamOutput) -> dict[str, Any]:
    head = s.head.decode("utf-8", errors="replace")
    out: dict[str, Any] = {"bytes": s.size, "sha256": s.sha256, "head": head}
    if s.size > len(s.head):
        out["tail"] = s.tail.decode("utf-8", errors="replace")
    if s.cut:
        out["cut"] = True
    return out


class Attempts:
    def __init__(self, plan: Plan, bus: Bus, executors: Executors, interrupt: Interrupt) -> None:
        self.plan = plan
        self.bus = bus
        self.executors = executors
        self.interrupt = interrupt

    async def run(
        self, h: Host, action: Action, ctx: Context, sid: str, purpose: Purpose
    ) -> Outcome:
        """The action once, then again after `delay` up to `retries` times, until it holds."""
        out: Outcome | None = None
        for attempt in range(1, action.retries + 2):
            if attempt > 1 and action.delay:
                pause = asyncio.sleep(action.delay)
                await (self.interrupt.unless_stopped(pause) if purpose.forward else pause)
            if attempt > 1 and purpose.forward and self.interrupt.signal:
                assert out is not None
                return replace(out, reason=f"interrupted ({self.interrupt.signal}) before retrying")
            out = await self._once(h, action, ctx, sid, purpose, attempt)
            if out.ok:
                break
        assert out is not None
        return out

    async def check(
        self, h: Host, c: Check, ctx: Context, scope: str, sid: str, caller: str | None = None
    ) -> str:
        """Why the check does not hold after its retries, or "" when it does."""
        try:
            out = await self.run(h, c.action, ctx, sid, Purpose("check", scope, c.name, caller))
        except RenderError as exc:
            return str(exc)
        return out.reason

    async def preconditions(self, h: Host, rb: Runbook, ctx: Context, scope: str) -> str:
        for c in rb.preconditions:
            reason = await self.check(h, c, ctx, scope, f"{rb.id}:preconditions")
            if reason:
                return f"'{c.name}': {reason}"
        return ""

    async def connect(self, h: Host) -> str:
        """'' when the host's executor is connected (or needs no connection), else why not."""
        executor = self.executors.get(h)
        if executor.connected:  # nothing to wait for: no task to race an interrupt (per step)
            return ""
        try:  # a host that is slow to answer must not hold up an interrupt
            _, stopped = await self.interrupt.unless_stopped(executor.connect())
        except ConnectionFailed as exc:
            return f"unreachable: {exc}"
        return f"interrupted ({self.interrupt.signal}) while connecting" if stopped else ""

    async def _once(
        self, h: Host, action: Action, ctx: Context, sid: str, purpose: Purpose, attempt: int
    ) -> Outcome:
        executor = self.executors.get(h)
        command = self.plan.command(h.name, sid) if purpose.kind == "step" else None
        if command is None and action.kind == "run":  # a check, an undo, or it waited for a capture
            command = render(action.text, ctx, shell=True)
        if purpose.kind != "check":
            started = UndoStarted if purpose.kind == "rollback" else ActionStarted
            self.bus.emit(
                started(
                    h.name,
                    sid,
                    action.kind,
                    attempt,
                    command if command is not None else _preview(action, ctx),
                    name=purpose.name,
                    shell=action.shell,
                    caller=purpose.caller,
                )
            )

        seen = (OutputDigest(), OutputDigest())  # the executor fills them; read if interrupted

        def live(stream: str, chunk: bytes) -> None:
            self.bus.output(h.name, sid, stream, chunk)

        began = time.monotonic()
        # ready: what announces the command is made durable before it runs (the executor calls it)
        running = execute(
            action, ctx, executor, live, command=command, into=seen, ready=self.bus.sync
        )
        out, stopped = (
            await self.interrupt.unless_stopped(running)
            if purpose.forward
            else (await running, False)
        )
        self.bus.flush(h.name, sid)
        if stopped:
            out = _interrupted(self.interrupt.signal, command or _preview(action, ctx), seen, began)
        stop = self.interrupt.signal if stopped else ""
        self._finished(h, sid, purpose, attempt, out, stop, action.shell)
        return out

    def _finished(
        self,
        h: Host,
        sid: str,
        purpose: Purpose,
        attempt: int,
        out: Outcome,
        interrupted: str,
        shell: str,
    ) -> None:
        r = out.result
        finished = {"check": CheckFinished, "rollback": UndoFinished}.get(
            purpose.kind, ActionFinished
        )
        self.bus.emit(
            finished(
                h.name,
                sid,
                attempt,
                out.command,
                out.ok,
                None if interrupted else r.exit,
                round(r.duration, 6),
                digest(r.stdout),
                digest(r.stderr),
                status=out.status,
                reason=out.reason,
                timed_out=r.timed_out,
                interrupted=interrupted,
                name=purpose.name,
                scope=purpose.scope,
                shell=shell,
                caller=purpose.caller,
            )
        )


def _interrupted(signal_name: str, command: str, seen: Digests, began: float) -> Outcome:
    """What is known of a command killed by an interrupt: its output until then, no exit."""
    result = CommandResult(
        exit=-1,  # unknown; recorded as null
        stdout=seen[0].freeze(),
        stderr=seen[1].freeze(),
        duration=time.monotonic() - began,
    )
    why = f"interrupted ({signal_name}): the command was killed"
    return Outcome(result, command, None, why + cut_note(result.stdout, result.stderr))


def _preview(action: Action, ctx: Context) -> str:
    if action.kind == "http" and action.http:
        return f"{action.http.method} {render(action.http.url, ctx)}"
    return render(action.text, ctx, shell=action.kind == "run")
