"""`python -m runner`, and the `runbook` command (pyproject's entry point is `run`)."""

from __future__ import annotations

import contextlib
import os
import sys

from runner.cli import main


def run() -> None:
    """main(), then exit without the interpreter's teardown.

    When main returns, every journal is written, fsynced and closed, every lock released and
    every child process waited for; what is left is freeing ~375 modules one by one, ~20 ms of
    every command (a tenth of a short SSH run), which os._exit skips. Only the standard streams
    still hold data: they are flushed first.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        # a closed pipe (`runbook list | head`): nothing left to keep
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
