"""Walk a Plan across its hosts: preconditions, batches, the failure policy. Emits events only.

A host's steps run in steps.py; on a failure with `on_failure: rollback`, undo.py unwinds the
failed step (if its action started) and every completed step in reverse order; the first undo
that fails stops the unwinding (a person must act: exit 3).

Rollout (docs/rollout.md): preconditions run on every host first; a host whose preconditions fail
or that cannot be reached counts as failed before anything changed. Then the batches of
plan.batches run one after another, the hosts of a batch concurrently under the --forks
semaphore. When more than max_failures hosts have failed in all, no new batch starts; with
`on_batch_failure: rollback-batch` the hosts of the batch that succeeded are rolled back too.

Interrupts (docs/resilience.md): the first SIGINT/SIGTERM (`interrupt`) kills the commands of the
steps running now, starts nothing new, and applies the failure policy, asking first when there is
a terminal. Rollbacks are not interrupted by it. A second signal cancels the run outright (the
caller cancels the task): nothing more runs, the run stays resumable.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from runner.errors import EXIT_ROLLBACK_FAILED, StateError
from runner.execution.eventkinds import (
    BatchStarted,
    Confirmed,
    HostExcluded,
    Interrupted,
    RunAborted,
    RunError,
    RunFinished,
)
from runner.execution.events import Bus
from runner.execution.executors.pool import Executors
from runner.execution.hostresults import HostResult, after_failure, summary
from runner.execution.interrupts import Interrupt
from runner.execution.lifecycle import State, Tracker
from runner.execution.manual import Waiting
from runner.execution.prompts import Ask, Choose
from runner.execution.rollout import pause, stop_rollout
from runner.execution.stepevents import RollbackSkipped
from runner.execution.steps import Done, Options, Steps
from runner.execution.undo import roll_back
from runner.format.inventory import Host
from runner.planning.planned import Plan


class Engine:
    def __init__(
        self,
        plan: Plan,
        bus: Bus,
        executors: Executors,
        ask: Ask,
        options: Options,
        lifecycle: Tracker | None = None,
        choose: Choose | None = None,
    ) -> None:
        self.plan = plan
        self.lifecycle = lifecycle or Tracker(bus.emit, "running")
        self.bus = bus
        self.executors = executors
        self.ask = ask
        self.options = options
        self._forks = asyncio.Semaphore(max(1, options.forks))
        self._interrupt = Interrupt()
        self.steps = Steps(plan, bus, executors, ask, options, self._interrupt)
        if choose is not None:
            self.steps.prompts.choose = choose
        self._decision: asyncio.Future[bool] | None = None  # roll back after the interrupt?

    @property
    def _names(self) -> list[str]:
        return [h.name for h in self.plan.hosts]

    @property
    def interrupted(self) -> str:
        return self._interrupt.signal

    # --- interrupts -----------------------------------------------------------------------

    def interrupt(self, signal_name: str) -> bool:
        """A SIGINT/SIGTERM arrived: True for the first (the running steps are stopped)."""
        first = self._interrupt.fire(signal_name)
        if not first:
            then = "exiting now; the run stays resumable"
        elif self._interrupt.rolling_back:
            then = "the rollback under way goes on; interrupt again to exit at once"
        else:
            then = "stopping the running steps, then the failure policy (interrupt again to exit at once)"
        self.bus.emit(Interrupted(signal_name, first, then))
        return first

    async def _roll_back_after_interrupt(self) -> bool:
        """Asked once for the whole run, whichever host gets here first."""
        if self._decision is None:
            self._decision = asyncio.ensure_future(self._decide_rollback())
        return await asyncio.shield(self._decision)

    async def _decide_rollback(self) -> bool:
        resume = f"runbook resume {self.plan.run_id}"
        question = (
            f"Interrupted ({self.interrupted}). Roll back what this run did, as its failure "
            f"policy says?\n  (n leaves it as it is: `{resume}` continues it, "
            f"`runbook rollback {self.plan.run_id}` undoes it later)"
        )
        if self.options.yes:
            answer: bool | None = True
            via = "--yes"
        else:
            answer, via = await self.ask(question, True), "terminal"
            if answer is None:
                answer, via = True, "no terminal: the failure policy applies"
        self.bus.emit(Confirmed("roll back after the interrupt", answer, via))
        return bool(answer)

    # --- the run --------------------------------------------------------------------------

    async def run(self) -> int:
        start = time.monotonic()
        rb = self.plan.runbook
        hosts = self.plan.hosts
        try:
            max_failures = rb.rollout.max_failures if rb.rollout else 0
            pre = await asyncio.gather(
                *(self.bounded(h, self._host_preconditions(h)) for h in hosts)
            )
            failed = [(h.name, r) for h, r in zip(hosts, pre, strict=True) if r]
            results = [HostResult(n, False, r) for n, r in failed]
            if self.interrupted:  # during the preconditions: nothing changed yet
                return self._finish("interrupted", start, results)
            if len(failed) > max_failures:
                for name, reason in failed:
                    self.bus.emit(RunAborted(name, reason))
                return self._finish("aborted", start, results, "preconditions failed")
            for name, reason in failed:  # tolerated: the other hosts go on without these
                self.bus.emit(HostExcluded(name, reason))
            excluded = {name for name, _ in failed}
            batches = [[h for h in b if h.name not in excluded] for b in self.plan.batches]
            batches = [b for b in batches if b]
            batch_undo = bool(rb.rollout and rb.rollout.on_batch_failure == "rollback-batch")
            for i, batch in enumerate(batches):
                if self.interrupted:
                    break
                if i > 0 and not await pause(self, i, [h.name for h in batch]):
                    if self.interrupted:
                        break
                    why = f"halted: batch {i + 1} was not started; {summary(results, self._names)}"
                    return self._finish("failed", start, results, why)
                self.bus.emit(BatchStarted(i + 1, [h.name for h in batch]))
                batch_results = await asyncio.gather(
                    *(self.bounded(h, self._host(h)) for h in batch)
                )
                results += batch_results
                failures = sum(1 for r in results if not r.ok)
                last = i + 1 == len(batches)
                if failures > max_failures and rb.rollout and not (last and not batch_undo):
                    await stop_rollout(self, i + 1, batch, batch_results, failures, max_failures)
                    break
            return self._conclude(results, start)
        except asyncio.CancelledError:
            self._finish("interrupted", start, [], "interrupted again: exited at once")
            raise
        except StateError:
            raise  # the journal itself failed: nothing more can be recorded
        except Exception as exc:  # a bug: recorded (masked), and the exit code is the recorded one
            self.bus.emit(RunError(f"{type(exc).__name__}: {exc}"))
            why = f"internal error: {type(exc).__name__}"
            return self._finish("failed", start, [], why, code=EXIT_ROLLBACK_FAILED)

    def _conclude(self, results: list[HostResult], start: float) -> int:
        """The run's state when this command ends, from its hosts' results (lifecycle.py)."""
        if any(r.rollback_ok is False for r in results):  # a person must act: that wins
            return self._finish("rollback-failed", start, results)
        if self.interrupted:
            # its rollback, if any, ran to the end: a resume starts the steps again
            self.lifecycle.phase = "forward"
            return self._finish("interrupted", start, results, f"{self.interrupted}")
        if any(r.waiting for r in results):
            undo = self.lifecycle.phase == "rollback"
            why = f"a manual {'undo' if undo else 'step'} needs a person"
            return self._finish("waiting", start, results, why)
        if all(r.ok for r in results):
            return self._finish("succeeded", start, results)
        # one host's rollback does not undo the run: rolled-back only if nothing is left changed
        why = summary(results, self._names)
        return self._finish(after_failure(results), start, results, why)

    def _finish(
        self,
        state: State,
        start: float,
        results: list[HostResult],
        reason: str = "",
        code: int | None = None,
    ) -> int:
        """Record the run's new state, then this command's closing record; its exit code."""
        if not reason:
            reason = next((r.reason for r in results if r.reason), "")
        code = self.lifecycle.to(state, reason, code=code)
        self.bus.emit(
            RunFinished(
                outcome=self.lifecycle.state,
                exit_code=code,
                duration=round(time.monotonic() - start, 6),
                planned=self._names,
                hosts={
                    r.host: {"ok": r.ok, "reason": r.reason, "rollback_ok": r.rollback_ok}
                    for r in results
                },
            )
        )
        return code

    async def bounded(self, h: Host, coro: Any) -> Any:
        """Work on one host while holding one of the --forks slots (and its connection)."""
        async with self._forks:
            await self.executors.hold(h, max(1, self.options.forks))
            try:
                return await coro
            finally:
                self.executors.release(h)

    async def _host_preconditions(self, h: Host) -> str:
        rb = self.plan.runbook
        if not rb.preconditions:
            return ""
        return await self.steps.actions.preconditions(
            h, rb, self.plan.contexts[h.name], "precondition"
        )

    async def _host(self, h: Host) -> HostResult:
        if self.interrupted:  # still waiting for a --forks slot when the interrupt came
            return HostResult(h.name, False, f"not started: interrupted ({self.interrupted})")
        ctx = dict(self.plan.contexts[h.name])
        ctx.update(self.options.captures.get(h.name, {}))
        try:
            ok, done, reason = await self.steps.sequence(h, self.plan.runbook, ctx)
        except Waiting as exc:
            return HostResult(h.name, False, str(exc), waiting=True)
        if ok:
            return HostResult(h.name, True, done=done)
        why = await self.why_not_roll_back()
        if why:
            self.bus.emit(RollbackSkipped(h.name, why))
            return HostResult(h.name, False, reason, done=done)
        undone = await self.roll_back_host(h, done, reason)
        return HostResult(h.name, False, reason, undone, waiting=undone is None, done=done)

    async def roll_back_host(self, h: Host, done: list[Done], why: str) -> bool | None:
        """roll_back, the run entering the rolling-back state first (once, whichever host)."""
        if self.lifecycle.state != "rolling-back":
            self.lifecycle.to("rolling-back", why)
        return await roll_back(self.steps, h, done)

    async def why_not_roll_back(self) -> str:
        """ "" when the failure policy says roll back now, else why not (asks after an interrupt)."""
        if self.options.check_only:
            return "plan --check: only read-only steps ran"
        if self.options.no_rollback:
            return "--no-rollback"
        if self.plan.runbook.on_failure == "halt":
            return "on_failure: halt"
        if self.interrupted and not await self._roll_back_after_interrupt():
            return "declined after the interrupt: the run stays resumable"
        return ""

    # --- rollback -------------------------------------------------------------------------

    async def rollback_completed(self, completed: dict[str, list[str]]) -> int:
        """`runbook rollback RUN_ID`: undo the given steps per host, in reverse order."""
        start = time.monotonic()
        results: list[HostResult] = []
        for h in self.plan.hosts:
            ctx = dict(self.plan.contexts[h.name])
            ctx.update(self.options.captures.get(h.name, {}))
            ids = completed.get(h.name, [])
            done = [Done(s, ctx, s.id) for s in self.plan.runbook.steps if s.id in ids]
            if done:
                try:
                    ok = await roll_back(self.steps, h, done)
                except asyncio.CancelledError:  # a second interrupt: stop here, recorded
                    self._finish("interrupted", start, results, "interrupted again: exited at once")
                    raise
                results.append(
                    HostResult(h.name, bool(ok), "" if ok else "rollback failed", ok, ok is None)
                )
        if any(r.rollback_ok is False for r in results):
            return self._finish("rollback-failed", start, results)
        if any(r.waiting for r in results):
            return self._finish("waiting", start, results, "an undo needs a person")
        return self._finish("rolled-back", start, results)
