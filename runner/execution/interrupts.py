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
        self._event = asyncio.Event()

    def fire(self, signal_name: str) -> bool:
        """True for the first signal, False for any after it."""
        if self.signal:
            return False
        self.signal = signal_name
        self._event.set()
        return True

    async def unless_stopped(self, aw: Awaitable[Any]) -> tuple[Any, bool]:
        """(result, False), or (None, True) when an interrupt stopped `aw` (it is cancelled)."""
        task = asyncio.ensure_future(aw)
        stopper = asyncio.ensure_future(self._event.wait())
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
