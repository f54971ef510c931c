"""The engine emits events; the journal and the console subscribe.

Every event passes through the redactor here, once, before any subscriber sees it: this is the
one place where secrets become `***` (live output included, masked line by line).
"""

from __future__ import annotations

from typing import Protocol

from runner.execution.eventkinds import Event
from runner.format.redact import Redactor


class Subscriber(Protocol):
    shows_output: bool  # False: live output is not for it (the bus skips masking it for nobody)

    def event(self, e: Event) -> None: ...

    def output(self, host: str, step: str, stream: str, text: str) -> None: ...

    def sync(self) -> None:
        """Make what it was given durable, if it keeps anything (groupcommit.py)."""
        ...


class Bus:
    def __init__(self, redactor: Redactor, subscribers: list[Subscriber]) -> None:
        self.redactor = redactor
        self.subscribers = subscribers
        self._partial: dict[tuple[str, str, str], bytes] = {}
        self.live = any(sub.shows_output for sub in subscribers)

    def emit(self, e: Event) -> None:
        masked = e.masked(self.redactor.value) if self.redactor else e
        for sub in self.subscribers:
            sub.event(masked)

    def output(self, host: str, step: str, stream: str, chunk: bytes) -> None:
        """Live output, masked per complete line so a secret split across chunks is still caught."""
        if not self.live:  # nobody shows it (--quiet): no decoding or masking of every byte
            return
        key = (host, step, stream)
        data = self._partial.pop(key, b"") + chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) < 65536:
            self._partial[key] = data
            return
        if cut == 0:
            # 64 KiB without a newline: send all but what could be the start of a secret, which
            # waits for the next chunk (cut here, its two halves would each pass unmasked)
            cut = max(1, len(data) - self.redactor.longest())
        self._partial[key] = data[cut:]
        self._send(host, step, stream, data[:cut])

    def sync(self) -> None:
        """Make what was emitted durable: before a command starts (groupcommit.py)."""
        for sub in self.subscribers:
            sub.sync()

    def flush(self, host: str, step: str) -> None:
        for stream in ("stdout", "stderr"):
            rest = self._partial.pop((host, step, stream), b"")
            if rest:
                self._send(host, step, stream, rest)

    def _send(self, host: str, step: str, stream: str, data: bytes) -> None:
        text = self.redactor.text(data.decode("utf-8", errors="replace"))
        for sub in self.subscribers:
            sub.output(host, step, stream, text)
