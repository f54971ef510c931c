"""Run commands on one host over one SSH connection, opened on first use and reused (asyncssh).

Commands go to the host's helper (helper.py: one channel for all of them, a supervisor on the
host) when it can start there. Otherwise, with a `host.notice` saying so (or when
RUNBOOK_SSH_HELPER=off), each command gets a channel of its own and runs as `/bin/sh -c …`
under the login shell sshd starts for it, inside the wrapper of channel.py. sshd makes that shell
a session and process-group leader, so its pid is the group id of everything the command starts;
the shell reports it on stderr before exec'ing /bin/sh, and a timeout kills the whole group from
a second channel (through sudo too, for a sudo command).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from runner.executors._asyncssh_import import asyncssh  # skips a slow liboqs probe: see there
from runner.executors.base import (
    CommandRequest,
    CommandResult,
    ConnectionFailed,
    Digests,
    OutputCallback,
    OutputDigest,
)
from runner.executors.channel import channel_text, helper_text, kill_line, sudo_user
from runner.executors.helper import Helper

KILL_GRACE = 2.0  # seconds between TERM and KILL, and the wait after KILL
KEEPALIVE_COUNT_MAX = 3  # unanswered keepalives before the host counts as hung
_MARK = b"\x1erunner-pgid "  # \036 starts the line so no real output is mistaken for it
_MAX_PREAMBLE = 1 << 16  # stderr held back while looking for the mark


class _HostKeys(asyncssh.SSHClient):
    """Consulted by asyncssh only for a server key known_hosts does not trust.

    Records the key for the error message; accepts it only when asked to and known_hosts has no
    key at all for this host (an unknown host, never a changed key).
    """

    def __init__(self, known: asyncssh.SSHKnownHosts, file: Path, accept_new: bool) -> None:
        self.known, self.file, self.accept_new = known, file, accept_new
        self.offered: asyncssh.SSHKey | None = None
        self.changed = False
        self.conn: asyncssh.SSHClientConnection | None = None

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self.conn = conn

    def host_keys_sent(self, *_: object) -> None:
        """OpenSSH sends its host keys just after login, and holds its answer to our first
        channel open (Nagle) until that message is acknowledged; our delayed ACK would make it
        wait 40 ms, a sixth of a short run. Acknowledge at once instead."""
        sock = self.conn.get_extra_info("socket") if self.conn is not None else None
        quickack = getattr(socket, "TCP_QUICKACK", None)  # Linux only
        if sock is not None and quickack is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.offered = key
        trusted_keys, trusted_cas, *_ = self.known.match(host, addr, port if port != 22 else None)
        self.changed = bool(trusted_keys or trusted_cas)
        if self.changed or not self.accept_new:
            return False
        pattern = host if port == 22 else f"[{host}]:{port}"
        public = " ".join(key.export_public_key().decode().split()[:2])
        self.file.parent.mkdir(parents=True, exist_ok=True)
        with self.file.open("a") as f:
            f.write(f"{pattern} {public}\n")
        return True


async def _signal(
    conn: asyncssh.SSHClientConnection, pgid: int, sig: str, sudo: str | None = None
) -> None:
    """Send `sig` to a remote process group, from a channel of its own."""
    # `kill -PGID` reaches every process of the group, not just the shell
    script = kill_line(sig, str(pgid), sudo)
    with contextlib.suppress(asyncssh.Error, OSError, asyncio.TimeoutError):
        await asyncio.wait_for(conn.run(script, check=False), KILL_GRACE)


_KNOWN: dict[Path, tuple[tuple[int, int, int], asyncssh.SSHKnownHosts]] = {}


def _known_hosts(path: Path) -> asyncssh.SSHKnownHosts:
    """known_hosts parsed once per version of the file, not once per host: with a line per host,
    parsing it for each of 1,000 connections was a million key decodes (~30 s of CPU)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return asyncssh.SSHKnownHosts()
    version = (st.st_ino, st.st_size, st.st_mtime_ns)  # accept-new appends: a new version
    cached = _KNOWN.get(path)
    if cached is None or cached[0] != version:
        _KNOWN[path] = cached = (version, asyncssh.read_known_hosts(str(path)))
    return cached[1]


class _Abandoned(Exception):
    """Raised into asyncssh's session set-up to stop it before it sends the command."""


async def _settled(
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


class _Session(asyncssh.SSHClientSession[bytes]):
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
            if line.startswith(_MARK):
                with contextlib.suppress(ValueError):
                    self.pgid = int(line[len(_MARK) :])
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
            text, sudo = helper_text(request, as_root=conn.get_extra_info("username") == "root")
            if request.ready is not None:
                request.ready()
            result = await helper.run(text, sudo, request.timeout, on_output, into)
            if helper.closed:
                self._forget(conn)
            return result
        if request.ready is not None:
            request.ready()
        start = time.monotonic()
        session = _Session(on_output, into)
        opening = asyncio.ensure_future(
            conn.create_session(lambda: session, self._shell_text(request, conn), encoding=None)
        )
        try:
            chan, _ = await asyncio.shield(opening)
        except (asyncssh.Error, OSError) as exc:
            if conn.is_closed():
                self._forget(conn)
                return self._lost(exc, start)
            return self._lost(exc, start, what="cannot open a channel")
        except asyncio.CancelledError:
            # Stopped while the session was being set up. A channel still opening is closed as
            # soon as it opens, before the command is sent (see _Session). A command already
            # sent is starting: let the start finish, then kill it like any stopped command.
            session.abandoned = True
            started = await _settled(opening)
            if started is not None:
                await self._kill_owned(conn, started, session, request)
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
            await self._kill_owned(conn, chan, session, request)
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

    def _shell_text(self, request: CommandRequest, conn: asyncssh.SSHClientConnection) -> str:
        return channel_text(request, as_root=conn.get_extra_info("username") == "root")

    async def _kill_owned(
        self,
        conn: asyncssh.SSHClientConnection,
        chan: asyncssh.SSHClientChannel[bytes],
        session: _Session,
        request: CommandRequest,
    ) -> None:
        """The kill of a stopped command, as a task of its own that close() awaits: cancelled
        again (a second Ctrl-C), we stop waiting for it, but it still runs to its end."""
        task = asyncio.ensure_future(self._kill(conn, chan, session, request))
        self._kills.add(task)
        task.add_done_callback(self._kills.discard)
        await asyncio.shield(task)

    async def _kill(
        self,
        conn: asyncssh.SSHClientConnection,
        chan: asyncssh.SSHClientChannel[bytes],
        session: _Session,
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
        sudo = sudo_user(request, as_root=conn.get_extra_info("username") == "root")
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
        session: _Session | None = None,
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
                    self._conn = await self._connect()
                except ConnectionFailed as exc:
                    self._failure = exc
                    raise
            return self._conn

    async def _connect(self) -> asyncssh.SSHClientConnection:
        try:
            known = _known_hosts(self.known_hosts)
        except (OSError, ValueError) as exc:
            raise ConnectionFailed(f"{self.name}: cannot read {self.known_hosts}: {exc}") from None
        policy = _HostKeys(known, self.known_hosts, self.accept_new_host_keys)
        where = f"{self.address}:{self.port}" if self.port else self.address
        try:
            return await asyncssh.connect(
                self.address,
                port=self.port if self.port is not None else (),
                username=self.user if self.user is not None else (),
                client_keys=[str(self.key)] if self.key else (),
                known_hosts=known,
                config=[str(self.ssh_config)] if self.ssh_config else None,
                client_factory=lambda: policy,
                server_host_keys_handler=policy.host_keys_sent,
                connect_timeout=self.connect_timeout,
                keepalive_interval=self.keepalive_interval,
                keepalive_count_max=self.keepalive_count_max,
            )
        except asyncssh.HostKeyNotVerifiable as exc:
            raise ConnectionFailed(self._host_key_problem(policy, where, exc)) from None
        except asyncssh.PermissionDenied as exc:
            why = f"authentication failed ({exc.reason})"
        except (asyncio.TimeoutError, TimeoutError):
            why = f"timed out connecting to {where} after {self.connect_timeout:g}s"
        except ConnectionRefusedError:
            why = f"connection refused by {where}"
        except socket.gaierror as exc:
            why = f"cannot resolve {self.address}: {exc.strerror}"
        except OSError as exc:
            if exc.filename:  # a key or config file, not the network
                why = f"cannot read {exc.filename}: {exc.strerror}"
            else:
                why = f"cannot connect to {where}: {exc.strerror or exc}"
        except asyncssh.KeyImportError as exc:
            why = f"cannot load client key: {exc}"
        except ValueError as exc:  # e.g. asyncssh.ConfigParseError
            why = f"invalid SSH settings: {str(exc).splitlines()[0]}"
        except asyncssh.Error as exc:
            why = f"SSH error from {where}: {exc.reason}"
        raise ConnectionFailed(f"{self.name}: {why}")

    def _host_key_problem(
        self, policy: _HostKeys, where: str, exc: asyncssh.HostKeyNotVerifiable
    ) -> str:
        key = policy.offered
        if key is None:  # revoked, or a certificate that did not validate
            return f"{self.name}: host key of {where} refused: {exc.reason}"
        offered = f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"
        if policy.changed:
            return (
                f"{self.name}: HOST KEY CHANGED for {where}: server offers {offered}, which does "
                f"not match {self.known_hosts} (possible man-in-the-middle); refusing"
            )
        return (
            f"{self.name}: unknown host key for {where}: {offered} is not in {self.known_hosts}; "
            "verify it and add it (or use --accept-new-host-keys)"
        )
