"""`call:` expansion: a step that runs another runbook's steps on the same host, after that
runbook's own preconditions, with its steps' ids nested under the caller's (`caller/step`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner.execution.stepevents import CallStarted
from runner.format.inventory import Host
from runner.format.model import Step
from runner.planning.planned import Context
from runner.planning.planner import expand_call

if TYPE_CHECKING:
    from runner.execution.steps import StepResult, Steps


async def call(
    steps: Steps, h: Host, step: Step, ctx: Context, sid: str, caller: str | None
) -> StepResult:
    from runner.execution.steps import StepResult

    plan, bus = steps.plan, steps.bus
    hvars = plan.inventory.host_vars(h)
    sub, values, sub_ctx = expand_call(plan.catalog, step, ctx, hvars, h.name)
    for p in sub.params:
        if p.secret and values.get(p.name) is not None:
            bus.redactor.add(str(values[p.name]))
    bus.emit(CallStarted(h.name, sid, sub.id, sub.sha256, caller=caller))
    reason = await steps.actions.preconditions(h, sub, sub_ctx, "precondition")
    if reason:
        return StepResult.failed(f"'{sub.id}' precondition failed: {reason}")
    ok, done, why = await steps.sequence(h, sub, sub_ctx, caller=sid)
    return StepResult("ok" if ok else "failed", why, started=True, children=done)
