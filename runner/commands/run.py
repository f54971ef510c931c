from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from runner import __version__
from runner.audit import Journal, run_path
from runner.commands.common import prepare
from runner.console import Console, JournalSink
from runner.engine import Engine, Options
from runner.errors import EXIT_INTERRUPTED
from runner.events import Bus
from runner.executors.pool import Executors


@dataclass
class RunArgs:
    name: str
    params: list[str] = field(default_factory=list)
    params_file: str | None = None
    inventory: str | None = None
    yes: bool = False
    no_rollback: bool = False
    ticket: str | None = None
    forks: int = 10
    accept_new_host_keys: bool = False
    quiet: bool = False


def run(a: RunArgs, state_dir: Path) -> int:
    plan = prepare(a.name, a.params, a.params_file, a.inventory)  # exit 2 here: nothing ran
    rb = plan.runbook
    journal = Journal(run_path(state_dir, plan.run_id), plan.run_id)
    console = Console(show_output=not a.quiet)
    bus = Bus(plan.redactor, [JournalSink(journal), console])
    bus.emit(
        "run.started",
        run_id_=plan.run_id,
        runbook=rb.id,
        file=rb.file,
        runbook_sha256=rb.sha256,
        tool_version=__version__,
        params={k: ("***" if k in plan.secret_params else v) for k, v in plan.params.items()},
        inventory={"file": plan.inventory.file, "sha256": plan.inventory.sha256},
        hosts=[h.name for h in plan.hosts],
        batches=[[h.name for h in b] for b in plan.batches],
        plan_hash=plan.digest(),
        ticket=a.ticket,
        change=rb.change,
        argv=sys.argv[1:],
    )
    executors = Executors(plan.inventory, accept_new_host_keys=a.accept_new_host_keys)
    engine = Engine(
        plan,
        bus,
        executors,
        console.ask,
        Options(yes=a.yes, no_rollback=a.no_rollback, forks=a.forks),
    )
    try:
        return asyncio.run(_main(engine, executors))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return EXIT_INTERRUPTED
    finally:
        journal.close()
        print(f"audit log: {journal.path}", file=sys.stderr)


async def _main(engine: Engine, executors: Executors) -> int:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    assert task is not None
    # Ctrl-C / SIGTERM cancel the run: the running step's process group is killed, and the
    # engine writes run.finished (interrupted) before we exit 130.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await engine.run()
    except asyncio.CancelledError:
        return EXIT_INTERRUPTED
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await executors.close()
