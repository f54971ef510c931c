"""One host's steps: when -> step preconditions -> confirm -> action (retries/delay/timeout) ->
expect -> capture -> verify (retries/delay: wait-until). The engine (engine.py) decides what
runs where and when, and what a failure means; here each step comes to a `StepResult`.

The work is shared out by responsibility: questions to the operator in prompts.py, an action's
attempts (and their events) in attempts.py, `call:` in calls.py, manual steps in manual.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from runner.execution.attempts import Attempts, Purpose
from runner.execution.calls import call
from runner.execution.events import Bus
from runner.execution.executors.pool import Executors
from runner.execution.interrupts import Interrupt
from runner.execution.manual import manual_step
from runner.execution.prompts import Ask, Choose, Prompts, no_terminal
from runner.execution.stepevents import StepOutcome, StepSkipped
from runner.format.inventory import Host
from runner.format.model import Action, Runbook, Step
from runner.format.render import RenderError, evaluate, why_false
from runner.planning.checkmode import not_checked
from runner.planning.planned import Context, Plan

Status = Literal["ok", "failed", "skipped"]


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
    # a person's answer at a manual step, vouched for under the policy (identity.vouch: signed
    # with the operator's SSH key, or refused when the policy requires a signature)
    vouch: Callable[[str, str], dict[str, Any] | None] | None = None  # (host, step)


@dataclass
class Done:
    """A step whose action started, with what is needed to undo it."""

    step: Step
    ctx: Context
    sid: str  # where it ran: "step", or "caller/step" inside a called runbook
    children: list[Done] = field(default_factory=list)
    caller: str | None = None  # the calling step's sid, inside a called runbook


@dataclass(frozen=True)
class StepResult:
    """How one step ended. `started`: its action began, so a rollback has something to undo;
    `children`: what a `call:` step's runbook did, undone in its place."""

    status: Status
    reason: str = ""
    started: bool = False
    children: list[Done] = field(default_factory=list)

    @staticmethod
    def failed(reason: str, *, started: bool = False) -> StepResult:
        return StepResult("failed", reason, started)


class Steps:
    def __init__(
        self,
        plan: Plan,
        bus: Bus,
        executors: Executors,
        prompt: Ask,
        options: Options,
        interrupt: Interrupt,
        choose: Choose = no_terminal,
    ) -> None:
        self._unknown: dict[str, set[str]] = {}  # check mode: captures of steps not run
        self.plan = plan
        self.bus = bus
        self.options = options
        self.interrupt = interrupt
        self.prompts = Prompts(prompt, choose, interrupt, yes=options.yes)
        self.actions = Attempts(plan, bus, executors, interrupt)

    async def sequence(
        self, h: Host, rb: Runbook, ctx: Context, caller: str | None = None
    ) -> tuple[bool, list[Done], str]:
        """The runbook's steps in order: the run's own (caller None), or a called runbook's."""
        done: list[Done] = []
        before = self._skips(h, rb) if caller is None else {}
        for step in rb.steps:
            sid = step.id if caller is None else f"{caller}/{step.id}"
            if self.interrupt.signal:
                return False, done, f"interrupted ({self.interrupt.signal}) before step '{sid}'"
            if step.id in before:
                why = before[step.id]
                self.bus.emit(StepSkipped(h.name, sid, why, caller=caller))
                if why == _RESUMED:  # done in an earlier attempt: still undone on failure
                    done.append(Done(step, ctx, sid))
                continue
            if step.on is not None and h.name not in step.on:
                why = f"not targeted (on: {', '.join(step.on)})"
                self.bus.emit(StepSkipped(h.name, sid, why, caller=caller))
                continue
            result = await self._step(h, step, ctx, sid, caller)
            captured = (
                {step.capture: ctx[step.capture]} if step.capture and step.capture in ctx else None
            )
            self.bus.emit(
                StepOutcome(h.name, sid, result.status, result.reason, captured, caller=caller)
            )
            if result.status == "skipped":
                continue
            if result.started:
                done.append(Done(step, ctx, sid, result.children, caller))
            if result.status == "failed" and not step.continue_on_error:
                return False, done, f"step '{sid}': {result.reason}"
        return True, done, ""

    def _skips(self, h: Host, rb: Runbook) -> dict[str, str]:
        """The run's own steps not to run now: completed before a resume, or before --from."""
        out = dict.fromkeys(self.options.resumed.get(h.name, set()), _RESUMED)
        if self.options.from_step:
            for step in rb.steps:
                if step.id == self.options.from_step:
                    break
                out.setdefault(step.id, f"before --from {self.options.from_step}")
        return out

    async def _step(
        self, h: Host, step: Step, ctx: Context, sid: str, caller: str | None
    ) -> StepResult:
        try:
            why = self._not_now(h, step, ctx)
            if why:
                self.bus.emit(StepSkipped(h.name, sid, why, caller=caller))
                return StepResult("skipped", why)
            for c in step.preconditions:
                reason = await self.actions.check(h, c, ctx, "step-precondition", sid, caller)
                if reason:
                    return StepResult.failed(f"precondition '{c.name}' failed: {reason}")
            if step.confirm:
                reason = await self.prompts.confirm(self.bus, h, step, ctx, sid)
                if reason:
                    return StepResult.failed(reason)
            return await self._act(h, step, ctx, sid, caller)
        except RenderError as exc:
            return StepResult.failed(str(exc))

    def _not_now(self, h: Host, step: Step, ctx: Context) -> str:
        """Why the step is skipped: check mode, or its `when:` is false; '' to run it."""
        if self.options.check_only:
            why = not_checked(step, self._unknown.setdefault(h.name, set()))
            if why:
                return why
        if step.when is not None and not evaluate(step.when, ctx):
            return why_false(step.when, ctx, self.bus.redactor)
        return ""

    async def _act(
        self, h: Host, step: Step, ctx: Context, sid: str, caller: str | None
    ) -> StepResult:
        """The step's action, its capture and its verification."""
        kind = step.action.kind
        if kind == "manual":
            return await self.manual(h, step.action, ctx, sid, caller, forward=True)
        if kind == "call":
            return await call(self, h, step, ctx, sid, caller)
        if kind == "run":
            unreachable = await self.actions.connect(h)
            if unreachable:  # nothing ran on the host: nothing of this step to undo
                return StepResult.failed(unreachable)
        out = await self.actions.run(h, step.action, ctx, sid, Purpose("step", caller=caller))
        if not out.ok:
            return StepResult.failed(out.reason, started=True)
        if step.capture:
            ctx[step.capture] = out.result.stdout.text.strip()
        for c in step.verify:
            reason = await self.actions.check(h, c, ctx, "verify", sid, caller)
            if reason:
                return StepResult.failed(f"verification '{c.name}' failed: {reason}", started=True)
        return StepResult("ok", started=True)

    async def manual(
        self, h: Host, action: Action, ctx: Context, sid: str, caller: str | None, *, forward: bool
    ) -> StepResult:
        return await manual_step(self, h, action, ctx, sid, caller, forward=forward)

    def bus_actor(self) -> str:
        from runner.audit.journal import current_actor

        return current_actor()["user"]


_RESUMED = "completed before the run was resumed"
