"""Manual steps: a person does it. The text is shown once; the question is
`Done? [d]one / [n]ot yet / [f]ailed` with no default (Enter alone asks again: console.choose).
"not yet", or no terminal, leaves the run waiting (exit 5), resumable with
`runbook resume RUN_ID --confirm STEP --by NAME`; "failed" fails the step (or the undo).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from runner.inventory import Host
from runner.model import Action
from runner.render import render

if TYPE_CHECKING:
    from runner.plan import Context
    from runner.steps import Steps

# choose(question, keys) -> one of the letters in keys, or None when there is no terminal
Choose = Callable[[str, str], Awaitable[str | None]]
MANUAL_QUESTION = "Done? [d]one / [n]ot yet / [f]ailed"


class Waiting(Exception):
    """A manual step needs a person and there is no terminal: the run stops, resumable."""


async def no_terminal(question: str, keys: str) -> str | None:
    return None


async def manual_step(
    steps: Steps, h: Host, action: Action, ctx: Context, sid: str, *, forward: bool
) -> tuple[str, str]:
    """(status, reason) of a manual step (forward) or manual undo; raises Waiting."""
    text = render(action.text, ctx)
    phase = "forward" if forward else "rollback"
    steps.bus.emit("manual.shown", host=h.name, step=sid, instructions=text, phase=phase)
    if forward and steps.interrupt.signal:
        answer, stopped = None, True
    elif forward:
        answer, stopped = await steps.interrupt.unless_stopped(steps.choose(MANUAL_QUESTION, "dnf"))
    else:
        answer, stopped = await steps.choose(MANUAL_QUESTION, "dnf"), False
    if stopped:
        return "failed", f"interrupted ({steps.interrupt.signal}) before it was confirmed"
    if answer in (None, "n"):
        resume = f"runbook resume {steps.plan.run_id} --confirm {sid} --by NAME"
        why = "not done yet" if answer else "no terminal (--yes never answers manual steps)"
        steps.bus.emit(
            "step.waiting",
            host=h.name,
            step=sid,
            phase=phase,
            reason=why,
            instructions=text,
            resume=resume,
        )
        what = "manual step" if forward else "manual undo of step"
        raise Waiting(f"waiting for a person at {what} '{sid}' ({why}): when done, `{resume}`")
    done = answer == "d"
    steps.bus.emit(
        "manual.confirmed" if done else "manual.declined",
        host=h.name,
        step=sid,
        by=steps.bus_actor(),
        phase=phase,
    )
    return ("ok", "") if done else ("failed", "the operator said the manual step failed")
