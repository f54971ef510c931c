"""Rollback: a host's completed steps undone in reverse order, each undo verified if it says how.

The first undo that fails stops the unwinding and names what is left (exit 3: a person must act).
A manual undo with no terminal stops it too, waiting (exit 5): `resume --confirm` goes on from it.
"""

from __future__ import annotations

from runner.execution.attempts import Purpose
from runner.execution.manual import Waiting
from runner.execution.stepevents import RollbackBegin, RollbackDone, RollbackFailed, RollbackNone
from runner.execution.steps import Done, Steps
from runner.format.inventory import Host
from runner.format.render import RenderError


async def roll_back(steps: Steps, h: Host, done: list[Done]) -> bool | None:
    """Undo `done` on h in reverse order; False at the first undo that fails (a person must act),
    None at a manual undo with no terminal to confirm it (the run waits for a person)."""
    steps.interrupt.rolling_back += 1
    try:
        return await _undo(steps, h, done)
    except Waiting:
        return None
    finally:
        steps.interrupt.rolling_back -= 1


async def _undo(steps: Steps, h: Host, done: list[Done]) -> bool:
    steps.bus.emit(RollbackBegin(h.name, [d.sid for d in reversed(done)]))
    order = list(reversed(done))
    for n, d in enumerate(order):
        if d.children:
            if not await _undo(steps, h, d.children):
                return False
            continue
        if not d.step.rollback:
            steps.bus.emit(RollbackNone(h.name, d.sid, "no rollback defined", caller=d.caller))
            continue
        undos = list(d.step.rollback)
        if d.sid in steps.options.confirmed_undo.get(h.name, ()):  # `resume --confirm`: done
            first_manual = next((i for i, u in enumerate(undos) if u.action.kind == "manual"), -1)
            undos = undos[first_manual + 1 :]
        for undo in undos:
            if undo.action.kind == "manual":
                manual = await steps.manual(h, undo.action, d.ctx, d.sid, d.caller, forward=False)
                ok, reason = manual.status == "ok", manual.reason
            else:
                try:
                    purpose = Purpose("rollback", name=undo.name, caller=d.caller)
                    out = await steps.actions.run(h, undo.action, d.ctx, d.sid, purpose)
                    ok, reason = out.ok, out.reason
                except RenderError as exc:
                    ok, reason = False, str(exc)
            for c in undo.verify if ok else ():
                reason = await steps.actions.check(h, c, d.ctx, "rollback-verify", d.sid, d.caller)
                if reason:
                    ok = False
                    break
            if not ok:
                not_undone = [x.sid for x in order[n:]]  # this one and all before it
                steps.bus.emit(
                    RollbackFailed(h.name, d.sid, undo.name, reason, not_undone, caller=d.caller)
                )
                return False
        # recorded, so that a resume does not undo it again
        steps.bus.emit(RollbackDone(h.name, d.sid, caller=d.caller))
    return True
