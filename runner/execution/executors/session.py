"""One command's SSH channel: its output streamed to the callback and the digests, with the
line that reports the command's process group (the mark) taken out of its stderr."""

from __future__ import annotations

import asyncio
import contextlib

from runner.execution.executors._asyncssh_import import asyncssh
from runner.execution.executors.base import Digests, OutputCallback, OutputDigest

MARK = b"\x1erunner-pgid "  # \036 starts the line so no real output is mistaken for it
_MAX_PREAMBLE = 1 << 16  # stderr held back while looking for the mark


class _Abandoned(Exception):
    """Raised into asyncssh's session set-up to stop it before it sends the command."""


async def settled(
    opening: asyncio.Future[
        tuple[asyncssh.SSHClientChannel[bytes], asyncssh.SSHClientSession[bytes]]
    ],
) -> asyncssh.SSHClientChannel[bytes] | None:
    """The channel of a session set-up that was let finish, or None if nothing was started."""
    try:
        chan, _ = await opening
    except (_Abandoned, asyncssh.Error, OSError):
        return None
    return chan


class Session(asyncssh.SSHClientSession[bytes]):
    """Streams output to the callback and the digests; strips the process-group line."""

    def __init__(self, on_output: OutputCallback, into: Digests | None) -> None:
        self.on_output = on_output
        self.stdout, self.stderr = into or (OutputDigest(), OutputDigest())
        self.pgid: int | None = None
        self.reported = asyncio.Event()  # set once the pgid is known, or never will be
        self.abandoned = False  # stopped before the command was sent
        self.lost: Exception | None = None
        self._preamble: bytes | None = b""  # None once the mark was found (or given up on)

    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:
        # asyncssh calls this once the channel is open, just before it sends the command
        if self.abandoned:  # stopped meanwhile: send nothing, run nothing
            chan.close()
            raise _Abandoned

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if datatype != asyncssh.EXTENDED_DATA_STDERR:
            self._emit("stdout", self.stdout, data)
        elif self._preamble is None:
            self._emit("stderr", self.stderr, data)
        else:
            self._find_mark(self._preamble + data)

    def _find_mark(self, buf: bytes) -> None:
        # Usually the mark is the very first line; rc-file noise before it is passed through.
        while (end := buf.find(b"\n")) >= 0:
            line, buf = buf[: end + 1], buf[end + 1 :]
            if line.startswith(MARK):
                with contextlib.suppress(ValueError):
                    self.pgid = int(line[len(MARK) :])
                self._preamble = None
                self.reported.set()
                self._emit("stderr", self.stderr, buf)
                return
            self._emit("stderr", self.stderr, line)
        self._preamble = buf
        if len(buf) > _MAX_PREAMBLE:
            self._flush()

    def _flush(self) -> None:
        if self._preamble:
            self._emit("stderr", self.stderr, self._preamble)
        self._preamble = None
        self.reported.set()

    def _emit(self, stream: str, digest: OutputDigest, data: bytes) -> None:
        if data:
            digest.feed(data)
            self.on_output(stream, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._flush()
        self.lost = exc
