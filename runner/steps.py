"""One host's steps: when -> step preconditions -> confirm -> action (retries/delay/timeout) ->
expect -> capture -> verify (retries/delay: wait-until). Emits events only; the engine
(engine.py) decides what runs where and when, and what a failure means.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from runner.actions import Outcome, execute
from runner.checkmode import not_checked
from runner.events import Bus
from runner.executors.base import (
    CommandResult,
    ConnectionFailed,
    Digests,
    OutputDigest,
    StreamOutput,
)
from runner.interrupts import Interrupt
from runner.inventory import Host
from runner.manual import Choose, manual_step, no_terminal
from runner.model import Action, Check, Runbook, Step
from runner.plan import Context, Plan, expand_call
from runner.render import RenderError, evaluate, render, why_false

# ask(question, default) -> True/False, or None when there is no terminal to ask at
Ask = Callable[[str, bool], Awaitable[bool | None]]


@dataclass
class Options:
    yes: bool = False
    no_rollback: bool = False
    forks: int = 10
    from_step: str | None = None  # start at this step; earlier ones are skipped, not undone
    # resume: per host, the top-level steps completed before (skipped now, still rolled back)
    resumed: dict[str, set[str]] = field(default_factory=dict)
    captures: dict[str, dict[str, str]] = field(default_factory=dict)  # restored on resume
    # resume of a rollback: per host, the steps whose manual undo a person confirmed
    confirmed_undo: dict[str, set[str]] = field(default_factory=dict)
    check_only: bool = False  # `plan --check`: only `safe` steps run (checkmode.not_checked)


@dataclass
class Done:
    """A step whose action started, with what is needed to undo it."""

    step: Step
    ctx: Context
    sid: str  # where it ran: "step", or "caller/step" inside a called runbook
    children: list[Done] = field(default_factory=list)


def digest(s: StreamOutput) -> dict[str, Any]:
    head = s.head.decode("utf-8", errors="replace")
    out: dict[str, Any] = {"bytes": s.size, "sha256": s.sha256, "head": head}
    if s.size > len(s.head):
        out["tail"] = s.tail.decode("utf-8", errors="replace")
    return out


class Steps:
    def __init__(
        self,
        plan: Plan,
        bus: Bus,
        executors: Any,
        prompt: Ask,
        options: Options,
        interrupt: Interrupt,
        choose: Choose = no_terminal,
    ) -> None:
        self.choose = choose
        self._unknown: dict[str, set[str]] = {}  # check mode: captures of steps not run
        self.plan = plan
        self.bus = bus
        self.executors = executors
        self.prompt = prompt
        self.options = options
        self.interrupt = interrupt

    async def ask(self, question: str, forward: bool) -> tuple[bool | None, bool]:
        """(answer, interrupted): a question before or during a step is stopped by interrupts."""
        if not forward:
            return await self.prompt(question, False), False
        if self.interrupt.signal:
            return None, True
        answer, stopped = await self.interrupt.unless_stopped(self.prompt(question, False))
        return answer, stopped

    async def sequence(
        self, h: Host, rb: Runbook, ctx: Context, prefix: str
    ) -> tuple[bool, list[Done], str]:
        done: list[Done] = []
        before = self._skips(h, rb, prefix)
        for step in rb.steps:
            sid = prefix + step.id
            if self.interrupt.signal:
                return False, done, f"interrupted ({self.interrupt.signal}) before step '{sid}'"
            if step.id in before:
                why = before[step.id]
                self.bus.emit("step.skipped", host=h.name, step=sid, reason=why)
                if why == _RESUMED:
                    done.append(
                        Done(step, ctx, sid)
                    )  # done in an earlier attempt: still undone on failure
                continue
            if step.on is not None and h.name not in step.on:
                self.bus.emit(
                    "step.skipped",
                    host=h.name,
                    step=sid,
                    reason=f"not targeted (on: {', '.join(step.on)})",
                )
                continue
            status, reason, children, started = await self._step(h, rb, step, ctx, sid)
            extra = (
                {"capture": {step.capture: ctx[step.capture]}}
                if step.capture and step.capture in ctx
                else {}
            )
            self.bus.emit(
                "step.outcome", host=h.name, step=sid, status=status, reason=reason, **extra
            )
            if status == "skipped":
                continue
            if started:
                done.append(Done(step, ctx, sid, children))
            if status == "failed" and not step.continue_on_error:
                return False, done, f"step '{sid}': {reason}"
        return True, done, ""

    def _skips(self, h: Host, rb: Runbook, prefix: str) -> dict[str, str]:
        """Top-level steps not to run now: completed before a resume, or before --from."""
        if prefix:
            return {}
        out = dict.fromkeys(self.options.resumed.get(h.name, set()), _RESUMED)
        if self.options.from_step:
            for step in rb.steps:
                if step.id == self.options.from_step:
                    break
                out.setdefault(step.id, f"before --from {self.options.from_step}")
        return out

    async def _step(
        self, h: Host, rb: Runbook, step: Step, ctx: Context, sid: str
    ) -> tuple[str, str, list[Done], bool]:
        """(status, reason, children, action_started)."""
        try:
            if self.options.check_only:
                why = not_checked(step, self._unknown.setdefault(h.name, set()))
                if why:
                    self.bus.emit("step.skipped", host=h.name, step=sid, reason=why)
                    return "skipped", why, [], False
            if step.when is not None and not evaluate(step.when, ctx):
                why = why_false(step.when, ctx, self.bus.redactor.text)
                self.bus.emit("step.skipped", host=h.name, step=sid, reason=why)
                return "skipped", why, [], False
            for c in step.preconditions:
                reason = await self.check(h, c, ctx, "step-precondition", sid)
                if reason:
                    return "failed", f"precondition '{c.name}' failed: {reason}", [], False
            if step.confirm:
                question = render(step.confirm, ctx)
                answer: bool | None = True
                via, stopped = "--yes", False
                if not self.options.yes:
                    (answer, stopped), via = await self.ask(question, True), "terminal"
                if stopped:
                    return (
                        "failed",
                        f"interrupted ({self.interrupt.signal}) at the question",
                        [],
                        False,
                    )
                if answer is None:
                    return (
                        "failed",
                        "needs confirmation, but there is no terminal (use --yes to answer confirm: questions)",
                        [],
                        False,
                    )
                self.bus.emit(
                    "confirm", host=h.name, step=sid, question=question, answer=answer, via=via
                )
                if not answer:
                    return "failed", "declined by the operator", [], False
            kind = step.action.kind
            if kind == "manual":
                return (*await self.manual(h, step.action, ctx, sid, forward=True), [], True)
            if kind == "call":
                return await self._call(h, step, ctx, sid)
            if kind == "run":
                unreachable = await self._connect(h)
                if unreachable:  # nothing ran on the host: nothing of this step to undo
                    return "failed", unreachable, [], False
            out = await self.attempts(h, step.action, ctx, sid, "step")
            if not out.ok:
                return "failed", out.reason, [], True
            if step.capture:
                ctx[step.capture] = out.result.stdout.text.strip()
            for c in step.verify:
                reason = await self.check(h, c, ctx, "verify", sid)
                if reason:
                    return "failed", f"verification '{c.name}' failed: {reason}", [], True
            return "ok", "", [], True
        except RenderError as exc:
            return "failed", str(exc), [], False

    async def _connect(self, h: Host) -> str:
        """'' when the host's executor is connected (or needs no connection), else why not."""
        connect = getattr(self.executors.get(h), "connect", None)
        if connect is None:
            return ""
        try:  # a host that is slow to answer must not hold up an interrupt
            _, stopped = await self.interrupt.unless_stopped(connect())
        except ConnectionFailed as exc:
            return f"unreachable: {exc}"
        return f"interrupted ({self.interrupt.signal}) while connecting" if stopped else ""

    async def manual(
        self, h: Host, action: Action, ctx: Context, sid: str, *, forward: bool
    ) -> tuple[str, str]:
        return await manual_step(self, h, action, ctx, sid, forward=forward)

    def bus_actor(self) -> str:
        from runner.audit import current_actor

        return current_actor()["user"]

    async def _call(
        self, h: Host, step: Step, ctx: Context, sid: str
    ) -> tuple[str, str, list[Done], bool]:
        hvars = self.plan.inventory.host_vars(h)
        sub, values, sub_ctx = expand_call(self.plan.catalog, step, ctx, hvars, h.name)
        for p in sub.params:
            if p.secret and values.get(p.name) is not None:
                self.bus.redactor.add(str(values[p.name]))
        self.bus.emit(
            "step.started",
            host=h.name,
            step=sid,
            kind="call",
            command=sub.id,
            runbook_sha256=sub.sha256,
        )
        reason = await self.preconditions(h, sub, sub_ctx, "precondition")
        if reason:
            return "failed", f"'{sub.id}' precondition failed: {reason}", [], False
        ok, done, why = await self.sequence(h, sub, sub_ctx, sid + "/")
        return ("ok" if ok else "failed"), why, done, True

    async def attempts(
        self, h: Host, action: Action, ctx: Context, sid: str, what: str, name: str = ""
    ) -> Outcome:
        """The action once, then again after `delay` up to `retries` times, until it holds.

        Forward work (steps and their checks) stops at an interrupt; rollbacks do not.
        """
        forward = what not in ("rollback", "check:rollback-verify")
        out: Outcome | None = None
        for attempt in range(1, action.retries + 2):
            if attempt > 1 and action.delay:
                pause = asyncio.sleep(action.delay)
                await (self.interrupt.unless_stopped(pause) if forward else pause)
            if attempt > 1 and forward and self.interrupt.signal:
                assert out is not None
                return replace(out, reason=f"interrupted ({self.interrupt.signal}) before retrying")
            out = await self._once(h, action, ctx, sid, what, attempt, name, forward)
            if out.ok:
                break
        assert out is not None
        return out

    async def _once(
        self,
        h: Host,
        action: Action,
        ctx: Context,
        sid: str,
        what: str,
        attempt: int,
        name: str = "",
        forward: bool = True,
    ) -> Outcome:
        executor = self.executors.get(h)
        command = self.plan.command(h.name, sid) if what == "step" else None
        if command is None and action.kind == "run":  # a check, an undo, or it waited for a capture
            command = render(action.text, ctx, shell=True)
        if what in ("step", "rollback"):
            self.bus.emit(
                f"{what}.started",
                host=h.name,
                step=sid,
                kind=action.kind,
                attempt=attempt,
                command=command if command is not None else _preview(action, ctx),
                **({"name": name} if name else {}),
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
            await self.interrupt.unless_stopped(running) if forward else (await running, False)
        )
        self.bus.flush(h.name, sid)
        if stopped:
            out = _interrupted(self.interrupt.signal, command or _preview(action, ctx), seen, began)
        r = out.result
        fields: dict[str, Any] = dict(
            host=h.name,
            step=sid,
            attempt=attempt,
            command=out.command,
            ok=out.ok,
            exit=r.exit,
            duration=round(r.duration, 6),
            stdout=digest(r.stdout),
            stderr=digest(r.stderr),
        )
        if out.status is not None:
            fields["status"] = out.status
        if out.reason:
            fields["reason"] = out.reason
        if r.timed_out:
            fields["timed_out"] = True
        if stopped:
            fields.update(exit=None, interrupted=self.interrupt.signal)
        if name:
            fields["name"] = name
        if what.startswith("check:"):
            fields["scope"] = what.split(":", 1)[1]
        self.bus.emit(f"{what}.finished" if what in ("step", "rollback") else "check", **fields)
        return out

    async def check(self, h: Host, c: Check, ctx: Context, scope: str, sid: str) -> str:
        """Why the check does not hold after its retries, or "" when it does."""
        try:
            out = await self.attempts(h, c.action, ctx, sid, f"check:{scope}", c.name)
        except RenderError as exc:
            return str(exc)
        return out.reason

    async def preconditions(self, h: Host, rb: Runbook, ctx: Context, scope: str) -> str:
        for c in rb.preconditions:
            reason = await self.check(h, c, ctx, scope, f"{rb.id}:preconditions")
            if reason:
                return f"'{c.name}': {reason}"
        return ""


_RESUMED = "completed before the run was resumed"


def _interrupted(signal_name: str, command: str, seen: Digests, began: float) -> Outcome:
    """What is known of a command killed by an interrupt: its output until then, no exit."""
    result = CommandResult(
        exit=-1,  # unknown; recorded as null
        stdout=seen[0].freeze(),
        stderr=seen[1].freeze(),
        duration=time.monotonic() - began,
    )
    return Outcome(result, command, None, f"interrupted ({signal_name}): the command was killed")


def _preview(action: Action, ctx: Context) -> str:
    if action.kind == "http" and action.http:
        return f"{action.http.method} {render(action.http.url, ctx)}"
    return render(action.text, ctx, shell=action.kind == "run")
