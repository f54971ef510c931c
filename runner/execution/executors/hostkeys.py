"""Host keys: known_hosts read once per version of the file, the client policy that refuses a
key known_hosts does not trust (accepting a new host's only when asked), and the reason given."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

from runner.execution.executors._asyncssh_import import asyncssh


class HostKeys(asyncssh.SSHClient):
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


_KNOWN: dict[Path, tuple[tuple[int, int, int], asyncssh.SSHKnownHosts]] = {}


def known_hosts(path: Path) -> asyncssh.SSHKnownHosts:
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


def host_key_problem(
    name: str, known_hosts: Path, policy: HostKeys, where: str, exc: asyncssh.HostKeyNotVerifiable
) -> str:
    """The one-line reason a host key was refused: revoked, changed, or unknown."""
    key = policy.offered
    if key is None:  # revoked, or a certificate that did not validate
        return f"{name}: host key of {where} refused: {exc.reason}"
    offered = f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"
    if policy.changed:
        return (
            f"{name}: HOST KEY CHANGED for {where}: server offers {offered}, which does "
            f"not match {known_hosts} (possible man-in-the-middle); refusing"
        )
    return (
        f"{name}: unknown host key for {where}: {offered} is not in {known_hosts}; "
        "verify it and add it (or use --accept-new-host-keys)"
    )
