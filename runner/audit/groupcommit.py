"""Group commit for a run's journal: one sync per command, not one per record.

A record must be durable before the command it announces runs, and a step's result before
anything depends on it. Everything that can depend on it is a command (the next step, a check, a
rollback, a retry), a question to the operator, or the end of the run: so records are held in
memory and written with one sync immediately before each of those (`sync`). A crash loses only
records of things that had not been acted on yet: a command that ran after its `step.started`
was made durable but whose `step.finished` was not shows as "outcome unknown" to resume, the
same as a crash while it ran.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from runner.audit.journal import Journal

P = ParamSpec("P")
T = TypeVar("T")


class GroupCommitJournal(Journal):
    """A Journal whose appends are made durable together, by `sync`."""

    def __init__(self, path: Path, run_id: str, *, root: Path | None = None) -> None:
        super().__init__(path, run_id, root=root)
        self._pending: list[bytes] = []
        self._durable = (self.seq, self.last_hash)
        self.deferring = True

    def _commit(self, data: bytes) -> None:
        if self.deferring:
            self._pending.append(data)
        else:
            super()._commit(data)

    def sync(self) -> None:
        """Write the held records and make them durable: one write, one fdatasync.

        If that fails (StateError), the journal goes back to its last durable record, so what
        is sealed or appended next chains onto what is really on disk.
        """
        if not self._pending:
            return
        data, self._pending = b"".join(self._pending), []
        try:
            super()._commit(data)
        except BaseException:
            self.seq, self.last_hash = self._durable
            raise
        self._durable = (self.seq, self.last_hash)

    def write_through(self) -> None:
        """The run is over: sync what is held, and make every later append durable at once (the
        ledger's seal records the last hash, which must be on disk by then)."""
        self.sync()
        self.deferring = False


def synced(ask: Callable[P, Awaitable[T]], sync: Callable[[], None]) -> Callable[P, Awaitable[T]]:
    """`ask` (a question to the operator), after making the journal durable: an answer may take
    hours, and what the operator is asked about must be on disk while they think."""

    async def durable_ask(*args: P.args, **kwargs: P.kwargs) -> T:
        sync()
        return await ask(*args, **kwargs)

    return durable_ask
