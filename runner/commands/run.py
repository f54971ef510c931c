from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from runner import __version__
from runner.audit.groupcommit import GroupCommitJournal, synced
from runner.audit.journal import current_actor, run_path
from runner.audit.journalsink import JournalSink
from runner.audit.ledger import opened, seal
from runner.audit.signing import load_signer
from runner.commands.common import prepare
from runner.commands.saved_plan import from_saved
from runner.console import Console
from runner.errors import EXIT_INTERRUPTED, StateError, StoppedMidRun, UsageError
from runner.execution.engine import Engine
from runner.execution.eventkinds import HostNotice, LockTakenOver, RunOpened
from runner.execution.events import Bus, Subscriber
from runner.execution.executors.pool import Executors
from runner.execution.lifecycle import State, Tracker
from runner.execution.locks import Lock, lock_path
from runner.execution.steps import Options
from runner.planning import planfile
from runner.planning.planned import Plan

if TYPE_CHECKING:
    from runner.audit.policy import Policy
    from runner.audit.ship import LiveShipper


@dataclass
class RunArgs:
    name: str
    params: list[str] = field(default_factory=list)
    params_file: str | None = None
    inventory: str | Sequence[str] | None = None
    yes: bool = False
    no_rollback: bool = False
    ticket: str | None = None
    forks: int = 10
    accept_new_host_keys: bool = False
    quiet: bool = False
    plan_file: str | None = None
    require_approval: bool = False
    operator: str | None = None
    signing_key: str | None = None
    ssh_key: str | None = None  # the operator's SSH key (identity.py): signs a plan's use
    from_step: str | None = None
    from_reason: str | None = None
    extra: Sequence[str] = ()  # -e
    limit: str | None = None  # --limit: an Ansible host pattern
    json: bool = False  # --json: the progress on stderr, the result as one document on stdout


def run(a: RunArgs, state_dir: Path) -> int:
    plan, saved = planned(a, state_dir)
    code = start(plan, a, state_dir, saved)
    if a.json:
        from runner.commands.run_result import result

        print(json.dumps(result(state_dir, plan.run_id, code), indent=2))
    return code


def planned(a: RunArgs, state_dir: Path) -> tuple[Plan, dict[str, Any] | None]:
    """The plan to run, and the saved plan's record when it comes from `--plan` (exit 2 here:
    nothing ran)."""
    if a.plan_file:
        return from_saved(a, state_dir)
    return prepare(a.name, a.params, a.params_file, a.inventory, extra=a.extra, limit=a.limit), None


def start(plan: Plan, a: RunArgs, state_dir: Path, saved: dict[str, Any] | None = None) -> int:
    """Execute a built plan as a new run (`run`; a checklist's check items build their own)."""
    rb = plan.runbook
    started = {
        "runbook": rb.id,
        "file": rb.file,
        "runbook_sha256": rb.sha256,
        "files": planfile.files(plan),  # called runbooks too: resume and rollback compare them
        "tool_version": __version__,
        "params": {k: ("***" if k in plan.secret_params else v) for k, v in plan.params.items()},
        "inventory": planfile.inventory_record(plan),
        "hosts": [h.name for h in plan.hosts],
        "batches": [[h.name for h in b] for b in plan.batches],
        "plan_hash": saved["plan_hash"] if saved else plan.digest(),
        "plan_file": a.plan_file,
        "operator": a.operator or current_actor()["user"],
        "ticket": a.ticket,
        "change": rb.change,
        "from_step": a.from_step,
        "from_reason": a.from_reason,
        "argv": sys.argv[1:],
    }
    options = Options(yes=a.yes, no_rollback=a.no_rollback, forks=a.forks, from_step=a.from_step)
    if a.from_step and rb.step(a.from_step) is None:
        from runner.format.suggest import did_you_mean

        hint = did_you_mean(a.from_step, [s.id for s in rb.steps])
        raise UsageError(f"--from: runbook '{rb.id}' has no step '{a.from_step}'{hint}")
    from runner.planning import planuse

    executor = planuse.gate(
        state_dir, plan, saved, key=a.ssh_key, operator=a.operator, signing_key=a.signing_key
    )
    claim = None
    if saved is not None and executor is not None:

        def claim() -> None:
            planuse.claim(state_dir, saved, executor)

    return execute(plan, state_dir, "run.started", started, options, a, claim=claim)


def confirmation(
    rules: Policy, plan: Plan, host: str, step: str, *, key: str | None, by: str | None
) -> dict[str, Any]:
    """A person's "done" at a manual step (or manual undo) of `plan`'s run, vouched for under the
    policy (identity.vouch): signed with `key`, else `by` unsigned where the policy allows it.
    One form for an answer at the terminal and for `resume --confirm`."""
    fields = {"vouches": "manual.confirmed", "run": plan.run_id, "host": host, "step": step}
    signed = rules.vouch({**fields, "meaning": "performed"}, key=key, claimed=by)
    if plan.redactor.value(signed) != signed:  # the journal masks secrets everywhere
        raise UsageError(
            "a secret param's value appears in the signed confirmation (a very short "
            "secret?): masking it would break the signature; nothing was recorded"
        )
    return signed


def _vouching(plan: Plan, key: str | None) -> Callable[[str, str], dict[str, Any] | None]:
    """Options.vouch: a terminal answer's confirmation when it is signed (None: unsigned, which
    the policy allows); the policy is read only when someone answers."""

    def vouch(host: str, step: str) -> dict[str, Any] | None:
        from runner.audit import identity, policy

        signed = confirmation(policy.load(), plan, host, step, key=key, by=None)
        return signed if identity.SIG in signed else None

    return vouch


def execute(
    plan: Plan,
    state_dir: Path,
    event: str,
    fields: dict[str, Any],
    options: Options,
    a: RunArgs,
    *,
    rollback_only: dict[str, list[str]] | None = None,
    current: State | None = None,
    requested: bool = False,
    by_person: bool = False,
    also: Subscriber | None = None,
    screen: TextIO | None = None,
    claim: Callable[[], None] | None = None,
    lock: Lock | None = None,
) -> int:
    """Lock, journal, execute (or only roll back), seal. Shared by run, resume and rollback.

    `current` is the run's state before this command (lifecycle.derive); the command opens
    with a transition to running (or rolling-back, for `rollback_only`). `requested`: a person
    asked for the rollback; `by_person`: a person resolved a step of it (lifecycle.Tracker).
    `also` subscribes to the events too (plan --check's report); `screen`: the console's stream.
    `claim` records a saved plan's use (planuse.claim): last of what may refuse (exit 2) before
    the run's first record, under the run lock, so that a refusal does not use the plan up.
    `lock`: the run's lock, already taken by the caller (resume_state.locked), who releases it."""
    signer = load_signer(a.signing_key)  # a bad key stops here, before anything runs
    options.vouch = _vouching(plan, a.ssh_key)
    # RUNBOOK_SHIP_TO: records leave as they are written
    shipper = _shipper(state_dir, run_path(state_dir, plan.run_id))
    held = lock is not None
    if lock is None:
        hosts = [h.name for h in plan.hosts]
        lock = Lock(lock_path(state_dir, plan.runbook.id, hosts), plan.run_id).acquire()
    try:
        if claim is not None:
            claim()
        journal = GroupCommitJournal(run_path(state_dir, plan.run_id), plan.run_id, root=state_dir)
        first = journal.seq + 1
        console = Console(screen or (sys.stderr if a.json else None), show_output=not a.quiet)
        sinks: list[Subscriber] = [JournalSink(journal), console, *([also] if also else [])]
        bus = Bus(plan.redactor, [*sinks, shipper] if shipper else sinks)
        bus.emit(RunOpened(event, fields, plan.run_id))
        journal.sync()  # the ledger's opening entry names its last hash: on disk first
        opened(journal, state_dir, signer, first)
        if lock.taken_over:
            bus.emit(LockTakenOver(lock.taken_over, lock.reason))
        life = Tracker(bus.emit, current, by=a.operator or current_actor()["user"])
        life.requested, life.resolved_by_person = requested, by_person
        undoing = rollback_only is not None
        why = fields.get("reason") or _OPENING.get(event, event)
        life.to("rolling-back" if undoing else "running", str(why))
        executors = Executors(
            plan.inventory,
            accept_new_host_keys=a.accept_new_host_keys,
            notify=lambda host, text: bus.emit(HostNotice(host, text)),
        )
        # what the operator is asked about is on disk while they think (groupcommit.py)
        ask, choose = synced(console.ask, journal.sync), synced(console.choose, journal.sync)
        engine = Engine(plan, bus, executors, ask, options, life, choose)
        try:
            return asyncio.run(_main(engine, executors, rollback_only))
        except (KeyboardInterrupt, asyncio.CancelledError):
            return EXIT_INTERRUPTED
        except StateError as exc:
            raise StoppedMidRun(f"{exc} (commands before it ran: see the audit log)") from None
        finally:
            try:
                journal.write_through()
                seal(journal, state_dir, signer)
            except StateError as exc:
                raise StoppedMidRun(f"{exc} (the run was not sealed in the ledger)") from None
            finally:
                journal.close()
                if shipper is not None:
                    shipper.close()
            print(f"audit log: {journal.path}", file=sys.stderr)
    finally:
        if not held:
            lock.release()


_OPENING = {"run.started": "started", "run.resumed": "resumed", "check.started": "plan --check"}


def _shipper(state_dir: Path, journal: Path) -> LiveShipper | None:
    if not os.environ.get("RUNBOOK_SHIP_TO"):
        return None  # without importing ship (ssl, threading): ~5 ms of every start
    from runner.audit import ship

    return ship.live(state_dir, journal)


# SIGHUP (the terminal or the SSH session to it went away) is an interrupt like the others: the
# default action killed the runner with nothing recorded while the step ran on
INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _detach_terminal() -> None:
    """The terminal hung up: nobody can answer a question (the failure policy applies, as without
    a terminal), and writing to it would fail with EIO. What the console would print goes to
    /dev/null from now on; the audit log has it all."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


async def _main(
    engine: Engine, executors: Executors, rollback_only: dict[str, list[str]] | None
) -> int:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    assert task is not None

    def on_signal(sig: signal.Signals) -> None:
        # The first SIGINT/SIGTERM/SIGHUP stops the running steps and lets the failure policy
        # apply; the next one cancels the run: commands still running are killed without grace,
        # the engine records run.finished (interrupted), and we exit 130, resumable.
        if sig == signal.SIGHUP:
            _detach_terminal()
        if not engine.interrupt(sig.name):
            executors.hurry()
            task.cancel()

    for sig in INTERRUPTS:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        if rollback_only is not None:
            return await engine.rollback_completed(rollback_only)
        return await engine.run()
    except asyncio.CancelledError:
        return EXIT_INTERRUPTED
    finally:
        for sig in INTERRUPTS:
            loop.remove_signal_handler(sig)
        await executors.close()
