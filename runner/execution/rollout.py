"""A rollout's batches: the pause between two of them, and what happens when more hosts failed
than `max_failures` allows (docs/rollout.md). The engine (engine.py) runs the batches."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from runner.execution.eventkinds import Confirmed, RolloutStopped
from runner.execution.hostresults import HostResult
from runner.execution.stepevents import RollbackBatch, RollbackSkipped
from runner.format.inventory import Host

if TYPE_CHECKING:
    from runner.execution.engine import Engine


async def stop_rollout(
    engine: Engine,
    number: int,
    batch: list[Host],
    results: list[HostResult],
    failures: int,
    max_failures: int,
) -> None:
    """More than max_failures hosts failed: no new batch; maybe undo the whole batch."""
    rollout = engine.plan.runbook.rollout
    remaining = sum(len(b) for b in engine.plan.batches[number:])
    why_stop = f"{failures} host(s) failed, more than max_failures={max_failures}"
    engine.bus.emit(RolloutStopped(number, failures, max_failures, remaining, why_stop))
    if rollout is None or rollout.on_batch_failure != "rollback-batch":
        return
    succeeded = [(h, r) for h, r in zip(batch, results, strict=True) if r.ok]
    if not succeeded:
        return
    why = await engine.why_not_roll_back()
    if why:
        for h, _ in succeeded:
            engine.bus.emit(RollbackSkipped(h.name, why))
        return
    why_undo = f"batch {number} failed (on_batch_failure: rollback-batch)"
    engine.bus.emit(RollbackBatch(number, [h.name for h, _ in succeeded], why_undo))
    oks = await asyncio.gather(
        *(
            engine.bounded(h, engine.roll_back_host(h, r.done, f"batch {number} failed"))
            for h, r in succeeded
        )
    )
    for (_, r), ok in zip(succeeded, oks, strict=True):
        r.rollback_ok, r.waiting = ok, ok is None
        r.reason = f"rolled back with batch {number}"


async def pause(engine: Engine, batch: int, hosts: list[str]) -> bool:
    """Between two batches, as `rollout.pause` says: go on at once, after a delay, or when
    the operator says so (False: stop here)."""
    rollout = engine.plan.runbook.rollout
    if rollout is None or rollout.pause == "none":
        return True
    if rollout.pause == "confirm":
        answer = (
            True
            if engine.options.yes
            else (await engine.steps.prompts.ask(_gate(batch, hosts), True))[0]
        )
        via = "--yes" if engine.options.yes else "terminal"
        engine.bus.emit(Confirmed(f"start batch {batch + 1}", bool(answer), via, hosts=hosts))
        return bool(answer)
    await engine.steps.interrupt.unless_stopped(asyncio.sleep(float(rollout.pause)))
    return not engine.interrupted


def _gate(batch: int, hosts: list[str]) -> str:
    names = ", ".join(hosts[:8]) + (f" and {len(hosts) - 8} more" if len(hosts) > 8 else "")
    return f"Batch {batch} done. Start batch {batch + 1} ({names})?"
