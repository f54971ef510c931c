"""Rollback: a host's completed steps undone in reverse order, each undo verified if it says how.

The first undo that fails stops the unwinding and names what is left (exit 3: a person must act).
A manual undo with no terminal stops it too, waiting (exit 5): `resume --confirm` goes on from it.
"""

from __future__ import annotations

from runner.inventory import Host
from runner.manual import Waiting
from runner.render import RenderError
from runner.steps import Done, Steps


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
    steps.bus.emit("rollback.begin", host=h.name, steps=[d.sid for d in reversed(done)])
    order = list(reversed(done))
    for n, d in enumerate(order):
        if d.children:
            if not await _undo(steps, h, d.children):
                return False
            continue
        if not d.step.rollback:
            steps.bus.emit("rollback.none", host=h.name, step=d.sid, reason="no rollback defined")
            continue
        undos = list(d.step.rollback)
        if d.sid in steps.options.confirmed_undo.get(h.name, ()):  # `resume --confirm`: done
            first_manual = next((i for i, u in enumerate(undos) if u.action.kind == "manual"), -1)
            undos = undos[first_manual + 1 :]
        for undo in undos:
            if undo.action.kind == "manual":
                status, reason = await steps.manual(h, undo.action, d.ctx, d.sid, forward=False)
                ok = status == "ok"
            else:
                try:
                    out = await steps.attempts(h, undo.action, d.ctx, d.sid, "rollback", undo.name)
                    ok, reason = out.ok, out.reason
                except RenderError as exc:
                    ok, reason = False, str(exc)
            for c in undo.verify if ok else ():
                reason = await steps.check(h, c, d.ctx, "rollback-verify", d.sid)
                if reason:
                    ok = False
                    break
            if not ok:
                steps.bus.emit(
                    "rollback.failed",
                    host=h.name,
                    step=d.sid,
                    name=undo.name,
                    reason=reason,
                    not_rolled_back=[x.sid for x in order[n:]],  # this one and all before it
                )
                return False
        steps.bus.emit("rollback.done", host=h.name, step=d.sid)  # a resume does not undo it again
    return True
