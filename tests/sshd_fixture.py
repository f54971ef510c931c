"""A real, throwaway OpenSSH server on loopback for the SSH tests (a pytest plugin).

Loaded from tests/conftest.py with `pytest_plugins = ["sshd_fixture"]`. `sshd` is one server for
the whole session on 127.0.0.1..127.0.0.10; `make_sshd` starts private servers for tests that kill,
freeze or restart them, so the shared one is never disturbed.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
import yaml

SSHD = Path("/usr/sbin/sshd")
ADDRESSES = 10  # OpenSSH caps one sshd at 16 listen sockets
PORTS = range(22100, 23000)

CONFIG = """\
Port {port}
{listen}
HostKey {dir}/host_ed25519
PidFile none
AuthorizedKeysFile {dir}/authorized_keys .ssh/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
MaxStartups 200:30:400
MaxSessions 200
PrintMotd no
PrintLastLog no
# root's ~/.bashrc here runs `pyenv init` (~100 ms) for every ssh command unless bash thinks it
# is nested; SHLVL=1 makes it skip the file (see shared/peer-bench/README.md).
SetEnv SHLVL=1
LogLevel ERROR
"""


def _write_key(key: asyncssh.SSHKey, path: Path) -> None:
    key.write_private_key(str(path))
    key.write_public_key(str(path) + ".pub")
    path.chmod(0o600)  # sshd and ssh refuse private keys other users can read


def _public_line(key: asyncssh.SSHKey) -> str:
    """`ssh-ed25519 AAAA…` without the comment."""
    return " ".join(key.export_public_key().decode().split()[:2])


def _port_is_free(port: int, addresses: list[str]) -> bool:
    for address in addresses:
        with socket.socket() as sock:
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


def _children(pid: int) -> list[int]:
    """Direct children of pid, from /proc (sshd forks one process per connection)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # the command name may contain spaces and parentheses; ppid follows the last ')'
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


class SSHServer:
    """One sshd process serving `count` loopback addresses on one port."""

    def __init__(self, root: Path, count: int = ADDRESSES) -> None:
        self.dir = root
        self.addresses = [f"127.0.0.{i}" for i in range(1, count + 1)]
        self.user = getpass.getuser()
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        _write_key(host_key, root / "host_ed25519")
        _write_key(client_key, root / "client_ed25519")
        self.client_key = root / "client_ed25519"
        self.host_key_pub = _public_line(host_key)
        (root / "authorized_keys").write_text(_public_line(client_key) + "\n")
        self.port = self._free_port()
        self.config = root / "sshd_config"
        listen = "\n".join(f"ListenAddress {a}" for a in self.addresses)
        self.config.write_text(CONFIG.format(port=self.port, listen=listen, dir=root))
        self.log = root / "sshd.log"
        self.known_hosts = root / "known_hosts"
        self.known_hosts.write_text(
            "".join(f"[{a}]:{self.port} {self.host_key_pub}\n" for a in self.addresses)
        )
        self._proc: subprocess.Popen[bytes] | None = None

    def _free_port(self) -> int:
        start = random.randrange(len(PORTS))  # parallel sessions rarely collide
        for i in range(len(PORTS)):
            port = PORTS[(start + i) % len(PORTS)]
            if _port_is_free(port, self.addresses):
                return port
        raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")

    def start(self) -> None:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege-separation dir
        # -D: stay in the foreground, so this Popen is the listener and stop() can reach it.
        self._proc = subprocess.Popen(
            [str(SSHD), "-D", "-f", str(self.config), "-E", str(self.log)],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        waiting = list(self.addresses)
        while waiting:
            if self._proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sshd did not listen on {waiting}: {self.log}")
            try:
                socket.create_connection((waiting[0], self.port), timeout=1).close()
                waiting.pop(0)
            except OSError:
                time.sleep(0.02)

    def connection_pids(self) -> list[int]:
        """The per-connection sshd processes (children of the listener)."""
        return _children(self._proc.pid) if self._proc else []

    def freeze(self) -> list[int]:
        """SIGSTOP every connection process: the host hangs, its TCP connections stay open."""
        pids = self.connection_pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    def stop(self) -> None:
        """Kill the listener and every open connection, as if the host's sshd died."""
        if self._proc is None:
            return
        # connection processes live in their own sessions; killing the listener alone leaves them
        for pid in self.connection_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._proc.kill()
        self._proc.wait()
        self._proc = None

    def write_inventory(
        self,
        path: Path,
        *,
        hosts: int | None = None,
        vars: dict[str, Any] | None = None,
        **ssh: Any,
    ) -> Path:
        """An inventory in SPEC §3 form: hosts h1..hN on 127.0.0.1..N; `ssh` keys override."""
        settings: dict[str, Any] = {
            "known_hosts": str(self.known_hosts),
            "key": str(self.client_key),
            "connect_timeout": "5s",
            **ssh,
        }
        chosen = self.addresses[: hosts or len(self.addresses)]
        inventory: dict[str, Any] = {
            "ssh": settings,
            "hosts": {
                f"h{i}": {"address": address, "port": self.port, "user": self.user}
                for i, address in enumerate(chosen, start=1)
            },
        }
        if vars:
            inventory["vars"] = vars
        path.write_text(yaml.safe_dump(inventory, sort_keys=False))
        return path


SSH_PATHS = ("helper", "channel")  # RUNBOOK_SSH_HELPER: auto (the helper) or off


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that talks to an sshd runs twice: through the per-host helper, and with one
    channel per command (the path taken when a host has no Python 3)."""
    if {"sshd", "make_sshd"} & set(
        metafunc.fixturenames
    ) and "ssh_path" not in metafunc.fixturenames:
        metafunc.fixturenames.append("ssh_path")
        metafunc.parametrize("ssh_path", SSH_PATHS, indirect=True)


@pytest.fixture
def ssh_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    path = str(getattr(request, "param", "helper"))
    monkeypatch.setenv("RUNBOOK_SSH_HELPER", "auto" if path == "helper" else "off")
    return path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ssh: needs the real OpenSSH server of sshd_fixture")


def _require_sshd() -> None:
    if not SSHD.exists():
        pytest.skip(f"{SSHD} is not installed (apt-get install openssh-server)")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """The shared server; tests must not stop or freeze it (use make_sshd for that)."""
    _require_sshd()
    server = SSHServer(tmp_path_factory.mktemp("sshd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_sshd(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., SSHServer]]:
    """Start private servers (one address unless count= says more) for destructive tests, or
    tests that count the server's connections; all stopped afterwards."""
    _require_sshd()
    servers: list[SSHServer] = []

    def make(count: int = 1) -> SSHServer:
        server = SSHServer(tmp_path_factory.mktemp("sshd-private"), count=count)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()  # SIGKILL reaches frozen processes too


@pytest.fixture(scope="session")
def sudo_login(sshd: SSHServer) -> Iterator[str]:
    """A throwaway non-root user that logs in with the test client key and may sudo anything
    without a password (as a deploy user on a real host), removed with its processes after."""
    if os.geteuid() != 0 or not Path("/usr/sbin/useradd").exists():
        pytest.skip("creating a test user needs root and useradd")
    name = f"rbt{os.getpid()}"
    sudoers = Path(f"/etc/sudoers.d/{name}")
    # -p "*": no password, but not locked ("!"), which sshd without PAM refuses
    subprocess.run(["useradd", "-m", "-p", "*", "-s", "/bin/sh", name], check=True)
    try:
        home = Path(f"/home/{name}")
        (home / ".ssh").mkdir(mode=0o700)
        (home / ".ssh" / "authorized_keys").write_text((sshd.dir / "authorized_keys").read_text())
        subprocess.run(["chown", "-R", f"{name}:{name}", str(home / ".ssh")], check=True)
        sudoers.write_text(f"{name} ALL=(ALL:ALL) NOPASSWD: ALL\n")
        sudoers.chmod(0o440)
        yield name
    finally:
        sudoers.unlink(missing_ok=True)
        uid = pwd.getpwnam(name).pw_uid
        for status in Path("/proc").glob("[0-9]*/status"):
            with contextlib.suppress(OSError, ValueError):
                if f"\nUid:\t{uid}\t" in status.read_text():
                    os.kill(int(status.parent.name), signal.SIGKILL)
        subprocess.run(["userdel", "-r", name], capture_output=True, check=False)
