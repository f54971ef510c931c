"""A real rsyslogd (Debian's) on a loopback port, with its own config, pid file and work dir:
imtcp in, omfile out with the RFC 5424 template (what a team's collector would write)."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
OSSL = Path("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so")
PORTS = range(22100, 23000)  # the range the sshd fixture draws from, at random

CONFIG = """\
global(workDirectory="{dir}/work" maxMessageSize="256k"{tls_global})
module(load="imtcp"{tls_module})
input(type="imtcp" port="{port}" address="127.0.0.1")
action(type="omfile" file="{dir}/collected.log" template="RSYSLOG_SyslogProtocol23Format")
"""
TLS_GLOBAL = """
       defaultNetstreamDriver="ossl"
       defaultNetstreamDriverCAFile="{dir}/ca.pem"
       defaultNetstreamDriverCertFile="{dir}/cert.pem"
       defaultNetstreamDriverKeyFile="{dir}/key.pem\""""
TLS_MODULE = ' streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon"'


class Rsyslog:
    def __init__(self, root: Path, *, tls: bool = False) -> None:
        self.dir = root
        (root / "work").mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.tls = tls
        if tls:
            _self_signed(root)
        self.conf = root / "rsyslog.conf"
        self.conf.write_text(
            CONFIG.format(
                dir=root,
                port=self.port,
                tls_global=TLS_GLOBAL.format(dir=root) if tls else "",
                tls_module=TLS_MODULE if tls else "",
            )
        )
        self.collected = root / "collected.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'tcp'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        with (self.dir / "rsyslogd.out").open("ab") as log:  # the child keeps its own copy
            self._proc = subprocess.Popen(
                [RSYSLOGD, "-n", "-f", str(self.conf), "-i", str(self.dir / "rsyslogd.pid")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"rsyslogd exited: {(self.dir / 'rsyslogd.out').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("rsyslogd did not listen within 20 s")

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(20)
        self._proc = None

    def messages(self) -> list[bytes]:
        """Our messages in the collected file, once rsyslogd has written them (it is stopped
        first, so that everything it took is flushed)."""
        if not self.collected.exists():
            return []
        return [x for x in self.collected.read_bytes().splitlines() if b"[runbook@32473 " in x]


def _free_port() -> int:
    start = random.randrange(len(PORTS))
    for i in range(len(PORTS)):
        port = PORTS[(start + i) % len(PORTS)]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def _self_signed(root: Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    shutil.copy(root / "cert.pem", root / "ca.pem")


@pytest.fixture
def rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    if not Path(RSYSLOGD).exists():
        pytest.skip("rsyslogd is not installed (make test installs it)")
    r = Rsyslog(tmp_path_factory.mktemp("rsyslog"))
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def rsyslog_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    if not Path(RSYSLOGD).exists() or not OSSL.exists():
        pytest.skip("rsyslog's TLS driver is not installed (make test installs rsyslog-openssl)")
    r = Rsyslog(tmp_path_factory.mktemp("rsyslog-tls"), tls=True)
    try:
        yield r
    finally:
        r.stop()
