"""Manual steps: a person does it. The text is shown once; the question is
`Done? [d]one / [n]ot yet / [f]ailed` with no default (Enter alone asks again: console.choose).
"not yet", or no terminal, leaves the run waiting (exit 5), resumable with
`runbook resume RUN_ID --confirm STEP --by NAME`; "failed" fails the step (or the undo).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner.errors import Error
from runner.execution.stepevents import ManualConfirmed, ManualDeclined, ManualShown, StepWaiting
from runner.format.inventory import Host
from runner.format.model import Action
from runner.format.render import render

if TYPE_CHECKING:
    from runner.execution.steps import StepResult, Steps
    from runner.planning.planned import Context

MANUAL_QUESTION = "Done? [d]one / [n]ot yet / [f]ailed"


class Waiting(Exception):
    """A manual step needs a person and there is no terminal: the run stops, resumable."""


async def manual_step(
    steps: Steps,
    h: Host,
    action: Action,
    ctx: Context,
    sid: str,
    caller: str | None,
    *,
    forward: bool,
) -> StepResult:
    """How a manual step (forward) or manual undo ended; raises Waiting."""
    from runner.execution.steps import StepResult

    text = render(action.text, ctx)
    phase = "forward" if forward else "rollback"
    steps.bus.emit(ManualShown(h.name, sid, text, phase, caller=caller))
    if forward and steps.interrupt.signal:
        answer, stopped = None, True
    elif forward:
        answer, stopped = await steps.interrupt.unless_stopped(
            steps.prompts.choose(MANUAL_QUESTION, "dnf")
        )
    else:
        answer, stopped = await steps.prompts.choose(MANUAL_QUESTION, "dnf"), False
    if stopped:
        return StepResult.failed(
            f"interrupted ({steps.interrupt.signal}) before it was confirmed", started=forward
        )
    signed, refused = None, ""
    if answer == "d" and steps.options.vouch is not None:
        try:
            signed = steps.options.vouch(h.name, sid)
        except Error as exc:  # the policy wants a signature this operator did not give
            answer, refused = "n", f"done, but not vouched for: {exc}"
    if answer in (None, "n"):
        resume = f"runbook resume {steps.plan.run_id} --confirm {sid} --by NAME"
        why = refused or (
            "not done yet" if answer else "no terminal (--yes never answers manual steps)"
        )
        steps.bus.emit(StepWaiting(h.name, sid, phase, why, text, resume, caller=caller))
        what = "manual step" if forward else "manual undo of step"
        raise Waiting(f"waiting for a person at {what} '{sid}' ({why}): when done, `{resume}`")
    done = answer == "d"
    answered = ManualConfirmed if done else ManualDeclined
    by = signed["by"] if signed else steps.bus_actor()
    confirmed = [signed] if signed else None  # audit verify checks it as a resume's (signoffs)
    steps.bus.emit(answered(h.name, sid, by, phase, confirmed, caller=caller))
    if done:
        return StepResult("ok", started=forward)
    return StepResult.failed("the operator said the manual step failed", started=forward)
