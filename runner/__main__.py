"""`python -m runner`, and the `runbook` command (pyproject's entry point is `run`)."""

from __future__ import annotations

import contextlib
import os
import sys

from runner import dataclasscode


def run() -> None:
    """main(), then exit without the interpreter's teardown.

    The dataclasses' compiled methods come from the start-up cache (dataclasscode.py): installed
    before the runner's modules import, saved after main when something had to be compiled.

    When main returns, every journal is written, fsynced and closed, every lock released and
    every child process waited for; what is left is freeing ~375 modules one by one, ~20 ms of
    every command (a tenth of a short SSH run), which os._exit skips. Only the standard streams
    still hold data: they are flushed first.
    """
    _not_dumpable()
    dataclasscode.install()
    from runner.cli import main

    code = main()
    dataclasscode.save()
    for stream in (sys.stdout, sys.stderr):
        # a closed pipe (`runbook list | head`): nothing left to keep
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _not_dumpable() -> None:
    """Only root may read this process's /proc/PID/environ and memory, as for ssh-agent: they
    hold secret params given in the environment, the signing key's PEM, secrets typed at a
    prompt; and every command a run starts runs as our user, who could otherwise read them.
    (No core dumps either; a debugger needs root.) Linux; elsewhere nothing changes."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


_PR_SET_DUMPABLE = 4  # <linux/prctl.h>


if __name__ == "__main__":
    run()
