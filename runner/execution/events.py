"""The engine emits events; the journal and the console subscribe.

Every event passes through the redactor here, once, before any subscriber sees it: this is the
one place where secrets become `***` (live output included, masked across the chunks it
comes in).
"""

from __future__ import annotations

import codecs
from typing import Protocol

from runner.execution.eventkinds import Event
from runner.format.redact import Redactor

_utf8 = codecs.getincrementaldecoder("utf-8")


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
        self._partial: dict[tuple[str, str, str], str] = {}  # decoded, not yet passed on
        self._decoders: dict[tuple[str, str, str], codecs.IncrementalDecoder] = {}
        self.live = any(sub.shows_output for sub in subscribers)

    def emit(self, e: Event) -> None:
        masked = e.masked(self.redactor.value) if self.redactor else e
        for sub in self.subscribers:
            sub.event(masked)

    def output(self, host: str, step: str, stream: str, chunk: bytes) -> None:
        """Live output, passed on in whole lines (or 64 Ki characters without a newline), masked
        across chunks: the end of what is passed on is held back while it could be the start of
        a secret (one cut by a chunk, or one of several lines printed a line at a time)."""
        if not self.live:  # nobody shows it (--quiet): no decoding or masking of every byte
            return
        key = (host, step, stream)
        decoder = self._decoders.get(key)
        if decoder is None:  # one per stream: a UTF-8 character cut by a chunk stays whole
            decoder = self._decoders[key] = _utf8(errors="replace")
        data = self._partial.pop(key, "") + decoder.decode(chunk)
        cut = data.rfind("\n") + 1
        if cut == 0 and len(data) < 65536:
            self._partial[key] = data
            return
        whole = cut > 0
        text, rest = (data[:cut], data[cut:]) if whole else (data, "")
        if self.redactor:
            text = self.redactor.text(text)
            held = self.redactor.pending(text)
            if held:
                cut = len(text) - held
                if whole:  # from the start of its line, so the screen shows whole lines
                    cut = text.rfind("\n", 0, cut) + 1
                text, rest = text[:cut], text[cut:] + rest
        self._partial[key] = rest
        if text:
            self._send(host, step, stream, text)

    def sync(self) -> None:
        """Make what was emitted durable: before a command starts (groupcommit.py)."""
        for sub in self.subscribers:
            sub.sync()

    def flush(self, host: str, step: str) -> None:
        for stream in ("stdout", "stderr"):
            key = (host, step, stream)
            decoder = self._decoders.pop(key, None)
            rest = self._partial.pop(key, "") + (decoder.decode(b"", final=True) if decoder else "")
            if rest:
                self._send(host, step, stream, self.redactor.text(rest))

    def _send(self, host: str, step: str, stream: str, text: str) -> None:
        for sub in self.subscribers:
            sub.output(host, step, stream, text)
