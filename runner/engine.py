"""Walk a Plan: preconditions, steps, verification, rollback, rollout. Emits events only.

Per step: when -> step preconditions -> confirm -> action (retries/delay/timeout) -> expect ->
capture -> verify (retries/delay: wait-until). On a failure with `on_failure: rollback`, the
failed step's rollback (if its action started) and then every completed step's rollback run in
reverse order; the first rollback that fails stops the unwinding (a person must act: exit 3).

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from runner import params as params_mod
from runner.actions import Outcome, execute
from runner.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_ROLLBACK_FAILED, StateError
from runner.events import Bus
from runner.executors.base import CommandResult, ConnectionFailed, OutputDigest, StreamOutput
from runner.inventory import Host
from runner.model import Action, Check, Runbook, Step
from runner.plan import Context, Plan, base_context
from runner.render import RenderError, evaluate, render

# ask(question, default) -> True/False, or None when there is no terminal to ask at
Ask = Callable[[str, bool], Awaitable[bool | None]]


EXIT_WAITING = (
    5  # stopped at a manual step with no terminal: `runbook resume RUN_ID --confirm STEP`
)


class Waiting(Exception):
    """A manual step needs a person and there is no terminal: the run stops, resumable."""


@dataclass
class Options:
    yes: bool = False
    no_rollback: bool = False
    forks: int = 10
    from_step: str | None = None  # start at this step; earlier ones are skipped, not undone
    # resume: per host, the top-level steps completed before (skipped now, still rolled back)
    resumed: dict[str, set[str]] = field(default_factory=dict)
    captures: dict[str, dict[str, str]] = field(default_factory=dict)  # restored on resume


@dataclass
class Done:
    """A step whose action started, with what is needed to undo it."""

    step: Step
    ctx: Context
    sid: str  # where it ran: "step", or "caller/step" inside a called runbook
    children: list[Done] = field(default_factory=list)


@dataclass
class HostResult:
    host: str
    ok: bool
    reason: str = ""
    rollback_ok: bool | None = None  # None: no rollback attempted
    waiting: bool = False
    done: list[Done] = field(default_factory=list, repr=False)  # to roll back a whole batch


def digest(s: StreamOutput) -> dict[str, Any]:
    head = s.head.decode("utf-8", errors="replace")
    out: dict[str, Any] = {"bytes": s.size, "sha256": s.sha256, "head": head}
    if s.size > len(s.head):
        out["tail"] = s.tail.decode("utf-8", errors="replace")
    return out


class Engine:
    def __init__(
        self,
        plan: Plan,
        bus: Bus,
        executors: Any,
        ask: Ask,
        options: Options,
    ) -> None:
        self.plan = plan
        self.bus = bus
        self.executors = executors
        self.ask = ask
        self.options = options
        self._forks = asyncio.Semaphore(max(1, options.forks))
        self.interrupted = ""  # the signal that stopped the run, once one has
        self._stop = asyncio.Event()
        self._decision: asyncio.Future[bool] | None = None  # roll back after the interrupt?
        self._rolling_back = 0  # hosts rolling back now

    # --- interrupts -----------------------------------------------------------------------

    def interrupt(self, signal_name: str) -> bool:
        """The first SIGINT/SIGTERM: stop the running steps. False when one came before."""
        first = not self.interrupted
        if first:
            self.interrupted = signal_name
            self._stop.set()
        if not first:
            then = "exiting now; the run stays resumable"
        elif self._rolling_back:
            then = "the rollback under way goes on; interrupt again to exit at once"
        else:
            then = "stopping the running steps, then the failure policy (interrupt again to exit at once)"
        self.bus.emit("interrupt", signal=signal_name, first=first, then=then)
        return first

    async def _unless_stopped(self, aw: Awaitable[Any]) -> tuple[Any, bool]:
        """(result, False), or (None, True) when an interrupt stopped `aw` (it is cancelled)."""
        task = asyncio.ensure_future(aw)
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not task.done():  # stopped, or cancelled ourselves: the command is killed
                task.cancel()
                await asyncio.wait({task})
        if task.cancelled():
            return None, True
        return task.result(), False

    async def _ask(self, question: str, forward: bool) -> tuple[bool | None, bool]:
        """(answer, interrupted): a question before or during a step is stopped by interrupts."""
        if not forward:
            return await self.ask(question, False), False
        if self.interrupted:
            return None, True
        answer, stopped = await self._unless_stopped(self.ask(question, False))
        return answer, stopped

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
        self.bus.emit("confirm", question="roll back after the interrupt", answer=answer, via=via)
        return bool(answer)

    # --- the run --------------------------------------------------------------------------

    async def run(self) -> int:
        start = time.monotonic()
        rb = self.plan.runbook
        hosts = self.plan.hosts
        try:
            max_failures = rb.rollout.max_failures if rb.rollout else 0
            pre = await asyncio.gather(
                *(self._bounded(h, self._host_preconditions(h)) for h in hosts)
            )
            failed = [(h.name, r) for h, r in zip(hosts, pre, strict=True) if r]
            results = [HostResult(n, False, r) for n, r in failed]
            if self.interrupted:  # during the preconditions: nothing changed yet
                return self._finish("interrupted", EXIT_INTERRUPTED, start, results)
            if len(failed) > max_failures:
                for name, reason in failed:
                    self.bus.emit("run.aborted", host=name, reason=reason)
                return self._finish("aborted", EXIT_FAILED, start, results)
            for name, reason in failed:  # tolerated: the other hosts go on without these
                self.bus.emit("host.excluded", host=name, reason=reason)
            excluded = {name for name, _ in failed}
            batches = [[h for h in b if h.name not in excluded] for b in self.plan.batches]
            batches = [b for b in batches if b]
            batch_undo = bool(rb.rollout and rb.rollout.on_batch_failure == "rollback-batch")
            for i, batch in enumerate(batches):
                if self.interrupted:
                    break
                if i > 0 and not await self._pause(i):
                    if self.interrupted:
                        break
                    return self._finish("halted", EXIT_FAILED, start, results)
                self.bus.emit("batch.started", batch=i + 1, hosts=[h.name for h in batch])
                batch_results = await asyncio.gather(
                    *(self._bounded(h, self._host(h)) for h in batch)
                )
                results += batch_results
                failures = sum(1 for r in results if not r.ok)
                last = i + 1 == len(batches)
                if failures > max_failures and rb.rollout and not (last and not batch_undo):
                    await self._stop_rollout(i + 1, batch, batch_results, failures, max_failures)
                    break
            return self._conclude(results, start)
        except asyncio.CancelledError:
            self._finish("interrupted", EXIT_INTERRUPTED, start, [])
            raise
        except StateError:
            raise  # the journal itself failed: nothing more can be recorded
        except Exception as exc:
            self.bus.emit("run.error", reason=f"{type(exc).__name__}: {exc}")
            self._finish("error", EXIT_ROLLBACK_FAILED, start, [])
            raise

    def _conclude(self, results: list[HostResult], start: float) -> int:
        if self.interrupted:
            if any(r.rollback_ok is False for r in results):  # a person must act: that wins
                return self._finish("interrupted", EXIT_ROLLBACK_FAILED, start, results)
            return self._finish("interrupted", EXIT_INTERRUPTED, start, results)
        failed = [r for r in results if not r.ok and not r.waiting]
        if not failed and any(r.waiting for r in results):
            return self._finish("waiting", EXIT_WAITING, start, results)
        if all(r.ok for r in results):
            return self._finish("succeeded", EXIT_OK, start, results)
        if any(r.rollback_ok is False for r in results):
            return self._finish("rollback-failed", EXIT_ROLLBACK_FAILED, start, results)
        rolled = any(r.rollback_ok for r in results)
        return self._finish("rolled-back" if rolled else "failed", EXIT_FAILED, start, results)

    def _finish(self, outcome: str, code: int, start: float, results: list[HostResult]) -> int:
        self.bus.emit(
            "run.finished",
            outcome=outcome,
            exit_code=code,
            duration=round(time.monotonic() - start, 6),
            hosts={
                r.host: {"ok": r.ok, "reason": r.reason, "rollback_ok": r.rollback_ok}
                for r in results
            },
        )
        return code

    async def _bounded(self, h: Host, coro: Any) -> Any:
        """Work on one host while holding one of the --forks slots (and its connection)."""
        async with self._forks:
            hold = getattr(self.executors, "hold", None)
            if hold is not None:
                await hold(h, max(1, self.options.forks))
            try:
                return await coro
            finally:
                release = getattr(self.executors, "release", None)
                if release is not None:
                    release(h)

    async def _host_preconditions(self, h: Host) -> str:
        rb = self.plan.runbook
        if not rb.preconditions:
            return ""
        return await self._preconditions(h, rb, self.plan.contexts[h.name], "precondition")

    async def _stop_rollout(
        self,
        number: int,
        batch: list[Host],
        results: list[HostResult],
        failures: int,
        max_failures: int,
    ) -> None:
        """More than max_failures hosts failed: no new batch; maybe undo the whole batch."""
        rollout = self.plan.runbook.rollout
        remaining = sum(len(b) for b in self.plan.batches[number:])
        self.bus.emit(
            "rollout.stopped",
            batch=number,
            failed=failures,
            max_failures=max_failures,
            hosts_not_started=remaining,
            reason=f"{failures} host(s) failed, more than max_failures={max_failures}",
        )
        if rollout is None or rollout.on_batch_failure != "rollback-batch":
            return
        succeeded = [(h, r) for h, r in zip(batch, results, strict=True) if r.ok]
        if not succeeded:
            return
        why = self._no_rollback_reason() or (
            "declined after the interrupt"
            if self.interrupted and not await self._roll_back_after_interrupt()
            else ""
        )
        if why:
            for h, _ in succeeded:
                self.bus.emit("rollback.skipped", host=h.name, reason=why)
            return
        self.bus.emit(
            "rollback.batch",
            batch=number,
            hosts=[h.name for h, _ in succeeded],
            reason=f"batch {number} failed (on_batch_failure: rollback-batch)",
        )
        oks = await asyncio.gather(
            *(self._bounded(h, self._rollback(h, r.done)) for h, r in succeeded)
        )
        for (_, r), ok in zip(succeeded, oks, strict=True):
            r.rollback_ok = ok
            r.reason = f"rolled back with batch {number}"

    async def _pause(self, batch: int) -> bool:
        rollout = self.plan.runbook.rollout
        if rollout is None or rollout.pause == "none":
            return True
        if rollout.pause == "confirm":
            answer = (
                True
                if self.options.yes
                else (await self._ask(f"Batch {batch} done. Start batch {batch + 1}?", True))[0]
            )
            self.bus.emit(
                "confirm",
                question=f"start batch {batch + 1}",
                answer=bool(answer),
                via="--yes" if self.options.yes else "terminal",
            )
            return bool(answer)
        await self._unless_stopped(asyncio.sleep(float(rollout.pause)))
        return not self.interrupted

    async def _host(self, h: Host) -> HostResult:
        if self.interrupted:  # still waiting for a --forks slot when the interrupt came
            return HostResult(h.name, False, f"not started: interrupted ({self.interrupted})")
        ctx = dict(self.plan.contexts[h.name])
        ctx.update(self.options.captures.get(h.name, {}))
        try:
            ok, done, reason = await self._sequence(h, self.plan.runbook, ctx, "")
        except Waiting as exc:
            return HostResult(h.name, False, str(exc), waiting=True)
        if ok:
            return HostResult(h.name, True, done=done)
        why = self._no_rollback_reason()
        if not why and self.interrupted and not await self._roll_back_after_interrupt():
            why = "declined after the interrupt: the run stays resumable"
        if why:
            self.bus.emit("rollback.skipped", host=h.name, reason=why)
            return HostResult(h.name, False, reason)
        return HostResult(h.name, False, reason, await self._rollback(h, done))

    def _no_rollback_reason(self) -> str:
        if self.options.no_rollback:
            return "--no-rollback"
        return "on_failure: halt" if self.plan.runbook.on_failure == "halt" else ""

    # --- steps ----------------------------------------------------------------------------

    async def _sequence(
        self, h: Host, rb: Runbook, ctx: Context, prefix: str
    ) -> tuple[bool, list[Done], str]:
        done: list[Done] = []
        before = self._skips(h, rb, prefix)
        for step in rb.steps:
            sid = prefix + step.id
            if self.interrupted:
                return False, done, f"interrupted ({self.interrupted}) before step '{sid}'"
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
            if step.when is not None and not evaluate(step.when, ctx):
                self.bus.emit(
                    "step.skipped", host=h.name, step=sid, reason=f"when is false: {step.when}"
                )
                return "skipped", f"when is false: {step.when}", [], False
            for c in step.preconditions:
                reason = await self._check(h, c, ctx, "step-precondition", sid)
                if reason:
                    return "failed", f"precondition '{c.name}' failed: {reason}", [], False
            if step.confirm:
                question = render(step.confirm, ctx)
                answer: bool | None = True
                via, stopped = "--yes", False
                if not self.options.yes:
                    (answer, stopped), via = await self._ask(question, True), "terminal"
                if stopped:
                    return "failed", f"interrupted ({self.interrupted}) at the question", [], False
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
                return (*await self._manual(h, step.action, ctx, sid, forward=True), [], True)
            if kind == "call":
                return await self._call(h, step, ctx, sid)
            if kind == "run":
                unreachable = await self._connect(h)
                if unreachable:  # nothing ran on the host: nothing of this step to undo
                    return "failed", unreachable, [], False
            out = await self._attempts(h, step.action, ctx, sid, "step")
            if not out.ok:
                return "failed", out.reason, [], True
            if step.capture:
                ctx[step.capture] = out.result.stdout.text.strip()
            for c in step.verify:
                reason = await self._check(h, c, ctx, "verify", sid)
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
        try:
            await connect()
        except ConnectionFailed as exc:
            return f"unreachable: {exc}"
        return ""

    async def _manual(
        self, h: Host, action: Action, ctx: Context, sid: str, *, forward: bool
    ) -> tuple[str, str]:
        text = render(action.text, ctx)
        self.bus.emit("manual.shown", host=h.name, step=sid, instructions=text)
        answer, stopped = await self._ask(f"{text}\nDone?", forward)
        if stopped:
            return "failed", f"interrupted ({self.interrupted}) before it was confirmed"
        if answer is None:
            resume = f"runbook resume {self.plan.run_id} --confirm {sid} --by NAME"
            self.bus.emit("step.waiting", host=h.name, step=sid, instructions=text, resume=resume)
            raise Waiting(
                f"waiting for a person at manual step '{sid}' (--yes never answers manual steps): "
                f"when it is done, `{resume}`"
            )
        self.bus.emit(
            "manual.confirmed" if answer else "manual.declined",
            host=h.name,
            step=sid,
            by=self.bus_actor(),
        )
        return ("ok", "") if answer else ("failed", "the operator did not confirm the manual step")

    def bus_actor(self) -> str:
        from runner.audit import current_actor

        return current_actor()["user"]

    async def _call(
        self, h: Host, step: Step, ctx: Context, sid: str
    ) -> tuple[str, str, list[Done], bool]:
        sub = self.plan.catalog.load(step.action.text)
        given = {k: (render(v, ctx) if isinstance(v, str) else v) for k, v in step.action.with_}
        values = params_mod.resolve(sub, given, environ={})
        for p in sub.params:
            if p.secret and values.get(p.name) is not None:
                self.bus.redactor.add(str(values[p.name]))
        sub_ctx = base_context(
            sub, values, self.plan.inventory.host_vars(h), h.name, self.plan.run_id
        )
        self.bus.emit(
            "step.started",
            host=h.name,
            step=sid,
            kind="call",
            command=sub.id,
            runbook_sha256=sub.sha256,
        )
        reason = await self._preconditions(h, sub, sub_ctx, "precondition")
        if reason:
            return "failed", f"'{sub.id}' precondition failed: {reason}", [], False
        ok, done, why = await self._sequence(h, sub, sub_ctx, sid + "/")
        return ("ok" if ok else "failed"), why, done, True

    async def _attempts(
        self, h: Host, action: Action, ctx: Context, sid: str, what: str, name: str = ""
    ) -> Outcome:
        """The action once, then again after `delay` up to `retries` times, until it holds.

        Forward work (steps and their checks) stops at an interrupt; rollbacks do not.
        """
        forward = what not in ("rollback", "check:rollback-verify")
        out: Outcome | None = None
        for attempt in range(1, action.retries + 2):
            if attempt > 1 and forward:
                if action.delay:
                    await self._unless_stopped(asyncio.sleep(action.delay))
                if self.interrupted:
                    assert out is not None
                    return replace(out, reason=f"interrupted ({self.interrupted}) before retrying")
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
        command = render(action.text, ctx, shell=True) if action.kind == "run" else None
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

        seen = {"stdout": OutputDigest(), "stderr": OutputDigest()}  # kept if interrupted

        def live(stream: str, chunk: bytes) -> None:
            seen[stream].feed(chunk)
            self.bus.output(h.name, sid, stream, chunk)

        began = time.monotonic()
        running = execute(action, ctx, executor, live, command=command)
        out, stopped = await self._unless_stopped(running) if forward else (await running, False)
        self.bus.flush(h.name, sid)
        if stopped:
            out = _interrupted(self.interrupted, command or _preview(action, ctx), seen, began)
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
            fields.update(exit=None, interrupted=self.interrupted)
        if name:
            fields["name"] = name
        if what.startswith("check:"):
            fields["scope"] = what.split(":", 1)[1]
        self.bus.emit(f"{what}.finished" if what in ("step", "rollback") else "check", **fields)
        return out

    async def _check(self, h: Host, c: Check, ctx: Context, scope: str, sid: str) -> str:
        """Why the check does not hold after its retries, or "" when it does."""
        try:
            out = await self._attempts(h, c.action, ctx, sid, f"check:{scope}", c.name)
        except RenderError as exc:
            return str(exc)
        return out.reason

    async def _preconditions(self, h: Host, rb: Runbook, ctx: Context, scope: str) -> str:
        for c in rb.preconditions:
            reason = await self._check(h, c, ctx, scope, f"{rb.id}:preconditions")
            if reason:
                return f"'{c.name}': {reason}"
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
                    ok = await self._rollback(h, done)
                except asyncio.CancelledError:  # a second interrupt: stop here, recorded
                    self._finish("interrupted", EXIT_INTERRUPTED, start, results)
                    raise
                results.append(HostResult(h.name, ok, "" if ok else "rollback failed", ok))
        if all(r.ok for r in results):
            return self._finish("rolled-back", 0, start, results)
        return self._finish("rollback-failed", EXIT_ROLLBACK_FAILED, start, results)

    async def _rollback(self, h: Host, done: list[Done]) -> bool:
        self._rolling_back += 1
        try:
            return await self._undo(h, done)
        finally:
            self._rolling_back -= 1

    async def _undo(self, h: Host, done: list[Done]) -> bool:
        self.bus.emit("rollback.begin", host=h.name, steps=[d.sid for d in reversed(done)])
        for d in reversed(done):
            if d.children:
                if not await self._undo(h, d.children):
                    return False
                continue
            if not d.step.rollback:
                self.bus.emit(
                    "rollback.none", host=h.name, step=d.sid, reason="no rollback defined"
                )
                continue
            for undo in d.step.rollback:
                if undo.action.kind == "manual":
                    status, reason = await self._manual(h, undo.action, d.ctx, d.sid, forward=False)
                    ok = status == "ok"
                else:
                    try:
                        out = await self._attempts(
                            h, undo.action, d.ctx, d.sid, "rollback", undo.name
                        )
                        ok, reason = out.ok, out.reason
                    except RenderError as exc:
                        ok, reason = False, str(exc)
                for c in undo.verify if ok else ():
                    reason = await self._check(h, c, d.ctx, "rollback-verify", d.sid)
                    if reason:
                        ok = False
                        break
                if not ok:
                    self.bus.emit(
                        "rollback.failed",
                        host=h.name,
                        step=d.sid,
                        name=undo.name,
                        reason=reason,
                        not_rolled_back=[x.sid for x in reversed(done) if x is not d][: len(done)],
                    )
                    return False
        return True


_RESUMED = "completed before the run was resumed"


def _interrupted(
    signal_name: str, command: str, seen: dict[str, OutputDigest], began: float
) -> Outcome:
    """What is known of a command killed by an interrupt: its output until then, no exit."""
    result = CommandResult(
        exit=-1,  # unknown; recorded as null
        stdout=seen["stdout"].freeze(),
        stderr=seen["stderr"].freeze(),
        duration=time.monotonic() - began,
    )
    return Outcome(result, command, None, f"interrupted ({signal_name}): the command was killed")


def _preview(action: Action, ctx: Context) -> str:
    if action.kind == "http" and action.http:
        return f"{action.http.method} {render(action.http.url, ctx)}"
    return render(action.text, ctx, shell=action.kind == "run")
