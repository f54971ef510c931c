"""Run commands on one host over one SSH connection, opened on first use and reused (asyncssh).

Commands go to the host's helper (helper.py: one channel for all of them, a supervisor on the
host) when it can start there. Otherwise, with a `host.notice` saying so (or when
RUNBOOK_SSH_HELPER=off), each command gets a channel of its own and runs under /bin/sh below
the login shell sshd starts for it, inside the wrapper of channel.py, which reads the command's
text from the channel (never from the session's command line). sshd makes that shell
a session and process-group leader, so its pid is the group id of everything the command starts;
the shell reports it on stderr before exec'ing /bin/sh, and a timeout kills the whole group from
a second channel (through sudo too, for a sudo command).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from runner.execution.executors._asyncssh_import import asyncssh
from runner.execution.executors.base import (
    CommandRequest,
    CommandResult,
    ConnectionFailed,
    Digests,
    OpenTCP,
    OutputCallback,
    OutputDigest,
)
from runner.execution.executors.channel import channel_text, helper_text, kill_line, sudo_user
from runner.execution.executors.connecting import open_connection
from runner.execution.executors.helper import Helper
from runner.execution.executors.session import Session, settled

KILL_GRACE = 2.0  # seconds between TERM and KILL, and the wait after KILL
KEEPALIVE_COUNT_MAX = 3  # unanswered keepalives before the host counts as hung


async def _signal(
    conn: asyncssh.SSHClientConnection, pgid: int, sig: str, sudo: str | None = None
) -> None:
    """Send `sig` to a remote process group, from a channel of its own."""
    # `kill -PGID` reaches every process of the group, not just the shell
    script = kill_line(sig, str(pgid), sudo)
    with contextlib.suppress(asyncssh.Error, OSError, asyncio.TimeoutError):
        await asyncio.wait_for(conn.run(script, check=False), KILL_GRACE)


def _as_root(conn: asyncssh.SSHClientConnection) -> bool:
    """Whether commands on this connection already run as root (so `sudo: root` is a no-op)."""
    return bool(conn.get_extra_info("username") == "root")


class SSHExecutor:
    """One host: one lazily opened connection, shared by all its commands."""

    def __init__(
        self,
        *,
        name: str,
        address: str,
        port: int | None = None,
        user: str | None = None,
        key: str | Path | None = None,
        known_hosts: str | Path | None = None,
        ssh_config: str | Path | None = None,
        connect_timeout: float = 10.0,
        accept_new_host_keys: bool = False,
        keepalive_interval: float = 15.0,
        keepalive_count_max: int = KEEPALIVE_COUNT_MAX,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.name, self.address, self.port, self.user = name, address, port, user
        self.key = Path(key).expanduser() if key else None
        # asyncssh would also read UserKnownHostsFile from ssh_config; we resolve the file
        # ourselves so that telling "unknown" from "changed" and accept-new use the same file.
        self.known_hosts = Path(known_hosts or "~/.ssh/known_hosts").expanduser()
        default_config = Path("~/.ssh/config").expanduser()
        if ssh_config:
            self.ssh_config: Path | None = Path(ssh_config).expanduser()
        else:
            self.ssh_config = default_config if default_config.is_file() else None
        self.connect_timeout = connect_timeout
        self.accept_new_host_keys = accept_new_host_keys
        self.keepalive_interval = keepalive_interval
        self.keepalive_count_max = keepalive_count_max
        self._conn: asyncssh.SSHClientConnection | None = None
        self._lock = asyncio.Lock()
        self._attempts = 0
        self._failure: ConnectionFailed | None = None
        self._kills: set[asyncio.Task[None]] = set()  # kills started by cancelled commands
        self._signals: tuple[str, ...] = ("TERM", "KILL")  # hurry(): KILL at once
        # pgid -> its connection and sudo user
        self._killing: dict[int, tuple[asyncssh.SSHClientConnection, str | None]] = {}
        self.notify = notify or (lambda message: None)
        self.use_helper = os.environ.get("RUNBOOK_SSH_HELPER", "auto") != "off"
        self._helper: Helper | None = None

    def hurry(self) -> None:
        """A second interrupt: no more TERM grace, for kills to come and kills under way."""
        self._signals = ("KILL",)
        if self._helper is not None:
            self._helper.hurry()
        for pgid, (conn, sudo) in list(self._killing.items()):
            task = asyncio.ensure_future(_signal(conn, pgid, "KILL", sudo))
            self._kills.add(task)
            task.add_done_callback(self._kills.discard)

    async def run(
        self, request: CommandRequest, on_output: OutputCallback, into: Digests | None = None
    ) -> CommandResult:
        conn = await self._connection()
        helper = await self._helper_for(conn)
        if helper is not None:
            text, sudo = helper_text(request, as_root=_as_root(conn))
            if request.ready is not None:
                request.ready()
            result = await helper.run(text, sudo, request.timeout, on_output, into)
            if helper.closed:
                self._forget(conn)
            return result
        if request.ready is not None:
            request.ready()
        start = time.monotonic()
        session = Session(on_output, into)
        text, stdin = channel_text(request, as_root=_as_root(conn))
        opening = asyncio.ensure_future(conn.create_session(lambda: session, text, encoding=None))
        try:
            chan, _ = await asyncio.shield(opening)
            chan.write(stdin)  # the command's text: never in the session's command line
        except (asyncssh.Error, OSError) as exc:
            if conn.is_closed():
                self._forget(conn)
                return self._lost(exc, start)
            return self._lost(exc, start, what="cannot open a channel")
        except asyncio.CancelledError:
            # Stopped while the session was being set up. A channel still opening is closed as
            # soon as it opens, before the command is sent (see Session). A command already
            # sent is starting: let the start finish, then kill it like any stopped command.
            session.abandoned = True
            started = await settled(opening)
            if started is not None:
                await self._kill_owned(self._kill(conn, started, session, request))
            raise
        closed = asyncio.ensure_future(chan.wait_closed())
        timed_out = abandoned = False
        try:
            await asyncio.wait({closed}, timeout=request.timeout)
            if not closed.done():
                timed_out = True
                await self._kill(conn, chan, session, request)
        except asyncio.CancelledError:
            # Stopped (Ctrl-C): make sure nothing is left running before going on (to a rollback,
            # say). The kill owns the channel now: it watches the channel close to know the
            # command died. Cancelled again, we stop waiting, and close() still awaits the kill.
            abandoned = True
            await self._kill_owned(self._kill(conn, chan, session, request))
            raise
        finally:
            if not closed.done() and not abandoned:
                chan.close()
            closed.cancel()
        status = chan.get_returncode()
        if session.lost is not None:
            self._forget(conn)
        if status is None and not timed_out:
            lost = session.lost or EOFError("channel closed without an exit status")
            return self._lost(lost, start, session)
        return CommandResult(
            exit=124 if status is None else status,
            stdout=session.stdout.freeze(),
            stderr=session.stderr.freeze(),
            duration=time.monotonic() - start,
            timed_out=timed_out,
        )

    async def open_tcp(
        self, host: str, port: int
    ) -> tuple[asyncssh.SSHReader[bytes], asyncssh.SSHWriter[bytes]]:
        """A TCP connection made by the host over this connection (direct-tcpip): `http:` steps
        reach the host's own localhost (executors/tunnel.py)."""
        conn = await self._connection()
        return await conn.open_connection(host, port, encoding=None)

    async def connect(self) -> None:
        """Open (or reuse) the connection; raises ConnectionFailed with a one-line reason."""
        await self._connection()

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    @property
    def tunnel(self) -> OpenTCP:
        return self.open_tcp

    async def close(self) -> None:
        if self._kills:
            await asyncio.gather(*self._kills, return_exceptions=True)
        if self._helper is not None:
            helper, self._helper = self._helper, None
            await helper.close()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            sock = conn.get_extra_info("socket")
            conn.close()
            with contextlib.suppress(asyncssh.Error, OSError):
                await conn.wait_closed()
            # wait_closed can return a loop iteration or more before asyncio closes the socket
            # itself; --forks counts open connections, so only return once it is really closed
            for tick in range(400):
                if sock is None or sock.fileno() == -1:
                    break
                if tick == 20:  # a busy loop (1,000 hosts) can take long: close it now
                    conn.abort()
                await asyncio.sleep(0.005)

    async def _kill_owned(self, kill: Coroutine[Any, Any, None]) -> None:
        """The kill of a stopped command (`_kill`), as a task of its own that close() awaits:
        cancelled again (a second Ctrl-C), we stop waiting for it, but it still runs to its end."""
        task = asyncio.ensure_future(kill)
        self._kills.add(task)
        task.add_done_callback(self._kills.discard)
        await asyncio.shield(task)

    async def _kill(
        self,
        conn: asyncssh.SSHClientConnection,
        chan: asyncssh.SSHClientChannel[bytes],
        session: Session,
        request: CommandRequest,
    ) -> None:
        """TERM the command's process group, then KILL what ignored it (e.g. `trap '' TERM`)."""
        if session.pgid is None:  # stopped just after it started: its group is on its way
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(session.reported.wait(), KILL_GRACE)
        pgid = session.pgid
        if pgid is None:  # the shell never reported in
            chan.close()
            return
        sudo = sudo_user(request, as_root=_as_root(conn))
        self._killing[pgid] = (conn, sudo)
        try:
            for sig in self._signals:
                await _signal(conn, pgid, sig, sudo)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(chan.wait_closed()), KILL_GRACE)
                    return
            chan.close()  # e.g. a daemon in another process group still holds the output open
        finally:
            self._killing.pop(pgid, None)

    def _lost(
        self,
        exc: BaseException,
        start: float,
        session: Session | None = None,
        what: str = "connection lost",
    ) -> CommandResult:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return CommandResult(
            exit=255,
            stdout=session.stdout.freeze() if session else OutputDigest().freeze(),
            stderr=session.stderr.freeze() if session else OutputDigest().freeze(),
            duration=time.monotonic() - start,
            error=f"{self.name}: {what}: {reason}",
        )

    async def _helper_for(self, conn: asyncssh.SSHClientConnection) -> Helper | None:
        """The helper on this connection: started by the first command, or None (with a notice,
        once per host) when it cannot start there: then each command gets a channel."""
        if not self.use_helper:
            return None
        async with self._lock:
            helper = self._helper
            if helper is None or helper.closed or helper.conn is not conn:
                started = await Helper.start(self.name, conn, self.connect_timeout)
                if isinstance(started, str):
                    self.use_helper = False
                    self.notify(
                        f"no helper on the host ({started}): one SSH channel per command instead"
                    )
                    return None
                self._helper = helper = started
            return helper

    def _forget(self, conn: asyncssh.SSHClientConnection) -> None:
        # The next command reconnects; whether to send one is the engine's decision.
        if self._conn is conn:
            self._conn = None
            conn.abort()

    async def _connection(self) -> asyncssh.SSHClientConnection:
        attempt = self._attempts
        async with self._lock:  # concurrent first commands must not open two connections
            # Commands that queued behind a failed attempt share its error instead of each
            # waiting out connect_timeout again; later commands try afresh.
            if self._attempts != attempt and self._failure is not None:
                raise self._failure
            if self._conn is not None and self._conn.is_closed():
                self._conn = None
            if self._conn is None:
                self._attempts += 1
                self._failure = None
                try:
                    self._conn = await open_connection(self)
                except ConnectionFailed as exc:
                    self._failure = exc
                    raise
            return self._conn
