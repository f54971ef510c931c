"""The audit journal as a subscriber of the run's events: each event's record (what the event
declares for the journal, eventkinds.py), in the order they happen. Live output is not
journaled: its digests are, in the events that end each attempt."""

from __future__ import annotations

from typing import Any

from runner.execution.eventkinds import Event


class JournalSink:
    shows_output = False

    def __init__(self, journal: Any) -> None:
        self.journal = journal

    def event(self, e: Event) -> None:
        self.journal.append(e.kind, e.record())

    def sync(self) -> None:
        self.journal.sync()

    def output(self, host: str, step: str, stream: str, text: str) -> None:
        return None
