#!/usr/bin/env python3
"""An experiment, not the product: the most an early SSH connection could save inside the runner's
own process (bench/README.md, issue 15, session 6).

    EARLY_HOSTS=w1[,w2,...] .venv/bin/python bench/early_connect.py \
        --state-dir D run RUNBOOK -i INVENTORY --quiet

The hosts are named in advance, as if the runner could predict them before planning (it cannot:
the plan decides). First thing, the process imports asyncssh, then a thread starts an event loop
that connects to those hosts and starts their helpers, while the main thread imports the rest of
the runner, plans and opens the run; the run's coroutine then runs on that thread's loop and
finds its hosts connected. With EARLY_IMPORT=thread the thread also does the asyncssh import,
concurrently with the main thread's imports. Signals are not handled (the loop is not the main
thread's): for timing only.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner import dataclasscode

dataclasscode.install()  # as the runbook command does


def _inventory_path() -> str:
    args = sys.argv[1:]
    return args[args.index("-i") + 1]


def connect_early(
    settings: list[dict[str, Any]], state: dict[str, Any], ready: threading.Event
) -> None:
    from runner.execution.executors._asyncssh_import import asyncssh  # noqa: F401
    from runner.execution.executors.ssh import SSHExecutor

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.add_signal_handler = lambda *a, **k: None  # type: ignore[method-assign]
    loop.remove_signal_handler = lambda *a, **k: True  # type: ignore[method-assign]
    executors = {s["name"]: SSHExecutor(**s) for s in settings}

    async def up(ex: SSHExecutor) -> None:
        await ex.connect()
        assert ex._conn is not None
        await ex._helper_for(ex._conn)

    tasks = [loop.create_task(up(ex)) for ex in executors.values()]
    state.update(loop=loop, executors=executors, tasks=tasks)
    ready.set()
    loop.run_forever()


def main() -> int:
    names = [n for n in os.environ.get("EARLY_HOSTS", "").split(",") if n]
    state: dict[str, Any] = {}
    ready = threading.Event()
    if os.environ.get("EARLY_IMPORT") != "thread":
        from runner.execution.executors._asyncssh_import import asyncssh  # noqa: F401
    # what a prediction would hold: each host's SSH settings (the runner needs this module anyway)
    from runner.execution.executors.pool import ssh_settings
    from runner.format import inventory

    inv = inventory.load(_inventory_path())
    hosts = {h.name: h for h in inv.hosts}
    settings = [ssh_settings(inv, hosts[n]) for n in names]
    threading.Thread(target=connect_early, args=(settings, state, ready), daemon=True).start()

    import runner.commands.run as run_command
    from runner.cli import main as runbook_main
    from runner.execution.executors import pool

    def on_the_thread(coro: Any) -> Any:
        ready.wait()
        return asyncio.run_coroutine_threadsafe(coro, state["loop"]).result()

    patched = type(sys)("asyncio")
    patched.__dict__.update(asyncio.__dict__)
    patched.run = on_the_thread  # type: ignore[attr-defined]
    run_command.asyncio = patched  # type: ignore[attr-defined]
    make = pool.Executors._make

    def early_or_made(self: Any, host: Any) -> Any:
        ready.wait()
        return state["executors"].get(host.name) or make(self, host)

    pool.Executors._make = early_or_made  # type: ignore[method-assign]
    sys.argv[0] = "runbook"
    code = runbook_main()
    dataclasscode.save()
    return code


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
