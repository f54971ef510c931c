"""The runner's side of the per-host helper (remote_helper.py): one SSH channel per connection
instead of one per command, and no login shell per command.

`Helper.start` starts it over an open connection (Python 3 on the host), or says why it cannot;
`Helper.run` sends one command and streams its framed output into the digests and callback.
A timeout or cancel asks the helper to kill the command's group (TERM, then KILL), a lost
connection fails every command still running, and the helper on the host kills them.

What the host sends is checked before it is used, as any host's output is (SECURITY.md): a frame
of a kind the helper does not send, longer than its CHUNK, about a command not running, or an
exit status that is not one is the host's protocol error. Its commands fail saying so and its
channel is closed (the next command reconnects): never an exception inside asyncssh's callback,
which would stop the channel's reading and leave the run waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import marshal
import shlex
import struct
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

from runner.execution.executors import remote_helper
from runner.execution.executors._asyncssh_import import asyncssh
from runner.execution.executors.base import CommandResult, Digests, OutputCallback, OutputDigest
from runner.execution.executors.remote_helper import BOOT, CHUNK, is_status

if TYPE_CHECKING:
    from importlib.abc import InspectLoader

KILL_GRACE = 2.0  # seconds between TERM and KILL, and the wait after KILL
_HEADER = struct.Struct(">cII")


@functools.cache
def boot() -> tuple[str, bytes]:
    """The helper's start (under the login shell, once per connection) and what it reads: our
    cache tag, remote_helper as our Python compiled it (from its .pyc), and its source."""
    source = Path(remote_helper.__file__).read_bytes()
    tag = (sys.implementation.cache_tag or "").encode()
    loader = cast("InspectLoader", remote_helper.__loader__)
    code = marshal.dumps(loader.get_code(remote_helper.__name__)) if tag else b""
    payload = tag + code + source
    text = BOOT % (len(payload), len(tag), len(tag) + len(code))
    # -I -S: no site, no user paths, no PYTHON* variables (~15 ms of start-up; the helper needs
    # only the standard library)
    return f"exec python3 -I -S -c {shlex.quote(text)}", payload


class _Command:
    def __init__(self, on_output: OutputCallback, into: Digests | None) -> None:
        self.on_output = on_output
        self.stdout, self.stderr = into or (OutputDigest(), OutputDigest())
        self.done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    def emit(self, stream: str, data: bytes) -> None:
        (self.stdout if stream == "stdout" else self.stderr).feed(data)
        self.on_output(stream, data)


class _Channel(asyncssh.SSHClientSession[bytes]):
    """Parses the helper's frames as they arrive; never holds more than one frame: none is
    longer than CHUNK (1 MiB), the most the helper reads from a pipe at once."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.commands: dict[int, _Command] = {}
        self.hello: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.said = bytearray()  # the helper's own stderr (e.g. "python3: not found")
        self.lost: str | None = None  # why the channel is no more, after "HOST: "
        self.chan: asyncssh.SSHClientChannel[bytes] | None = None

    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:
        self.chan = chan

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if datatype == asyncssh.EXTENDED_DATA_STDERR:
            self.said = (self.said + data)[-2048:]
            return
        if self.lost is not None:  # broken: what follows is not read
            return
        self.buf += data
        while len(self.buf) >= _HEADER.size:
            kind, cid, size = _HEADER.unpack_from(self.buf)
            if size > CHUNK:
                return self._broken(f"a frame of {size} bytes")
            end = _HEADER.size + size
            if len(self.buf) < end:
                return
            payload = bytes(self.buf[_HEADER.size : end])
            del self.buf[:end]
            wrong = self._frame(kind, cid, payload)
            if wrong:
                return self._broken(wrong)

    def _frame(self, kind: bytes, cid: int, payload: bytes) -> str:
        """Takes in one frame; what is wrong with it, if anything ("")."""
        if kind == b"H":
            if self.hello.done() or cid or payload:
                return "a 2nd hello"
            self.hello.set_result(None)
            return ""
        if not self.hello.done():
            return "a frame before its hello"
        if kind not in (b"O", b"E", b"X"):
            return f"a frame of kind {kind!r}"
        cmd = self.commands.get(cid)
        if cmd is None:
            return f"{kind.decode()} for command {cid}, which is not running"
        if kind == b"X":
            if not is_status(payload):
                return f"the exit status {payload[:16]!r}"
            del self.commands[cid]
            if not cmd.done.done():
                cmd.done.set_result(int(payload))
        else:
            cmd.emit("stdout" if kind == b"O" else "stderr", payload)
        return ""

    def _broken(self, why: str) -> None:
        self.buf.clear()
        self._end(f"the host's helper broke the helper protocol ({why}): its channel is closed")
        if self.chan is not None:
            self.chan.close()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = str(exc).splitlines()[0] if exc and str(exc) else "the helper's channel closed"
        self._end(f"connection lost: {reason}")

    def _end(self, reason: str) -> None:
        """The channel is no more: every command still running fails with `reason`."""
        if self.lost is not None:
            return
        self.lost = reason
        if not self.hello.done():
            self.hello.set_exception(ConnectionError(reason))
        for cmd in self.commands.values():
            if not cmd.done.done():
                cmd.done.set_result(None)
        self.commands.clear()


class Helper:
    def __init__(
        self,
        name: str,
        conn: asyncssh.SSHClientConnection,
        chan: asyncssh.SSHClientChannel[bytes],
        session: _Channel,
    ) -> None:
        self.name, self.conn, self.chan, self.session = name, conn, chan, session
        self._ids = itertools.count(1)
        self._kills: set[asyncio.Task[None]] = set()
        self._killing: set[int] = set()
        self.signals: tuple[str, ...] = ("TERM", "KILL")

    @classmethod
    async def start(
        cls, name: str, conn: asyncssh.SSHClientConnection, timeout: float
    ) -> Helper | str:
        """The running helper, or why there is none (no python3, a shell that prints, ...)."""
        session = _Channel()
        start, payload = boot()
        try:
            chan, _ = await asyncio.wait_for(
                conn.create_session(lambda: session, start, encoding=None), timeout
            )
        except (asyncssh.Error, OSError, asyncio.TimeoutError) as exc:
            return f"cannot open its channel: {exc}"
        chan.write(payload)
        try:
            await asyncio.wait_for(asyncio.shield(session.hello), timeout)
        except (ConnectionError, asyncio.TimeoutError) as exc:
            chan.close()
            said = session.said.decode(errors="replace").strip().splitlines()
            if said:
                return said[-1]
            return str(exc) if isinstance(exc, ConnectionError) else f"no answer in {timeout:g}s"
        return cls(name, conn, chan, session)

    @property
    def closed(self) -> bool:
        return self.session.lost is not None

    def hurry(self) -> None:
        self.signals = ("KILL",)
        for cid in self._killing:
            self._send(b"K", cid, b"KILL")

    async def run(
        self,
        text: str,
        sudo: str | None,
        timeout: float | None,
        on_output: OutputCallback,
        into: Digests | None,
    ) -> CommandResult:
        start = time.monotonic()
        cid = next(self._ids)
        cmd = _Command(on_output, into)
        if self.closed:  # lost since the executor chose it: it never reaches the host
            cmd.done.set_result(None)
        else:
            self.session.commands[cid] = cmd
            self._send(b"R", cid, (sudo or "").encode() + b"\0" + text.encode())
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.shield(cmd.done), timeout)
        except asyncio.TimeoutError:
            timed_out = True
            await self._kill(cid, cmd)
        except asyncio.CancelledError:
            # Stopped (Ctrl-C): kill it before going on (to a rollback, say), as a task close()
            # awaits, so that a second Ctrl-C stops our waiting, not the kill.
            task = asyncio.ensure_future(self._kill(cid, cmd))
            self._kills.add(task)
            task.add_done_callback(self._kills.discard)
            await asyncio.shield(task)
            raise
        status = cmd.done.result() if cmd.done.done() else None
        duration = time.monotonic() - start
        if status is None and not timed_out:
            why = self.session.lost or "connection lost: the helper stopped answering"
            return CommandResult(
                exit=255,
                stdout=cmd.stdout.freeze(),
                stderr=cmd.stderr.freeze(),
                duration=duration,
                error=f"{self.name}: {why}",
            )
        return CommandResult(
            exit=124 if status is None else status,
            stdout=cmd.stdout.freeze(),
            stderr=cmd.stderr.freeze(),
            duration=duration,
            timed_out=timed_out,
        )

    async def _kill(self, cid: int, cmd: _Command) -> None:
        """TERM the command's group, then KILL what ignored it; the helper does it as the
        command's own user."""
        self._killing.add(cid)
        try:
            for sig in self.signals:
                if cmd.done.done():
                    return
                self._send(b"K", cid, sig.encode())
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(cmd.done), KILL_GRACE)
        finally:
            self._killing.discard(cid)

    def _send(self, kind: bytes, cid: int, payload: bytes) -> None:
        if self.closed:
            return
        with contextlib.suppress(asyncssh.Error, OSError):
            self.chan.write(_HEADER.pack(kind, cid, len(payload)) + payload)

    async def close(self) -> None:
        if self._kills:
            await asyncio.gather(*self._kills, return_exceptions=True)
        self.chan.close()
