"""A run's interrupt state, shared by the engine and the steps it runs (docs/resilience.md).

The first SIGINT/SIGTERM `fire`s it: forward work (steps, their checks, retries, delays and
questions) awaited through `unless_stopped` is cancelled, so its command is killed. Rollbacks do
not go through it: a first interrupt never stops an undo half-way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


class Interrupt:
    def __init__(self) -> None:
        self.signal = ""  # the signal that stopped the run, once one has
        self.rolling_back = 0  # hosts rolling back now
        # done at the first signal; one for the run, not a waiting task per command (per step)
        self._stopped: asyncio.Future[None] | None = None

    def fire(self, signal_name: str) -> bool:
        """True for the first signal, False for any after it."""
        if self.signal:
            return False
        self.signal = signal_name
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
        return True

    async def unless_stopped(self, aw: Awaitable[Any]) -> tuple[Any, bool]:
        """(result, False), or (None, True) when an interrupt stopped `aw` (it is cancelled)."""
        loop = asyncio.get_running_loop()
        if self._stopped is None or self._stopped.get_loop() is not loop:
            self._stopped = loop.create_future()
            if self.signal:
                self._stopped.set_result(None)
        task = asyncio.ensure_future(aw)
        try:
            await asyncio.wait({task, self._stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():  # stopped, or cancelled ourselves: the command is killed
                task.cancel()
                await asyncio.wait({task})
        if task.cancelled():
            return None, True
        return task.result(), False
