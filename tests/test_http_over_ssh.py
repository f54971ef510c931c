"""`http:` steps and checks on a remote host go through its SSH connection (direct-tcpip): the
host's localhost is its own. `from: runner` sends the request from the runner instead."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from conftest import run_events, write_runbook
from slow_server import Trickle
from sshd_fixture import SSHServer

from runner.cli import main

pytestmark = pytest.mark.ssh


def socket_owner(port: int) -> str:
    """The command name of the process holding the TCP socket whose local port is `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            link = fd.readlink().name
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return (fd.parent.parent / "comm").read_text().strip()
    return "?"


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        owner = socket_owner(self.client_address[1])
        self.seen.append({"path": self.path, "body": body, "peer": owner})
        answer = json.dumps({"status": "healthy", "peer": owner}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    Recorder.seen = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


RUNBOOK = """
runbook: probe
targets: app
steps:
  - id: post
    http:
      url: "http://localhost:{port}/hook?x=1"
      method: POST
      body: {{hello: world}}
      {origin}
    expect: {{that: "result.json.status == 'healthy'"}}
"""


def inventory(workdir: Path, sshd: SSHServer) -> Path:
    inv = sshd.write_inventory(workdir / "inv.yaml", hosts=1)
    data = yaml.safe_load(inv.read_text())
    data["groups"] = {"app": ["h1"]}
    inv.write_text(yaml.safe_dump(data))
    return inv


def test_http_step_goes_through_the_hosts_ssh_connection(
    workdir: Path, sshd: SSHServer, server: http.server.ThreadingHTTPServer
) -> None:
    write_runbook(workdir, "probe", RUNBOOK.format(port=server.server_port, origin=""))
    assert main(["run", "probe", "-i", str(inventory(workdir, sshd))]) == 0
    (seen,) = Recorder.seen
    assert seen == {"path": "/hook?x=1", "body": '{"hello": "world"}', "peer": "sshd"}


def test_from_runner_opts_out(
    workdir: Path, sshd: SSHServer, server: http.server.ThreadingHTTPServer
) -> None:
    text = RUNBOOK.format(port=server.server_port, origin="from: runner")
    write_runbook(workdir, "probe", text)
    assert main(["run", "probe", "-i", str(inventory(workdir, sshd))]) == 0
    (seen,) = Recorder.seen
    assert seen["peer"] != "sshd" and seen["body"] == '{"hello": "world"}'


def test_a_host_that_cannot_reach_the_url_fails_the_check(
    workdir: Path, make_sshd: object, server: http.server.ThreadingHTTPServer
) -> None:
    """A host whose sshd forbids forwarding cannot make the request: the step fails, although
    the runner itself could reach the URL (proof that the runner does not make it)."""
    private: SSHServer = make_sshd()  # type: ignore[operator]
    private.stop()
    private.config.write_text(private.config.read_text() + "AllowTcpForwarding no\n")
    private.start()
    write_runbook(workdir, "probe", RUNBOOK.format(port=server.server_port, origin=""))
    assert main(["run", "probe", "-i", str(inventory(workdir, private))]) == 1
    assert Recorder.seen == []
    (check,) = [e for e in run_events(workdir / "state") if e["event"] == "step.finished"]
    assert "open failed (from h1)" in check["reason"]


def test_https_through_the_tunnel_checks_the_certificate_end_to_end(
    workdir: Path, sshd: SSHServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS runs between the runner and the server; the host only carries bytes. A certificate
    for the URL's name from a trusted CA passes, one for another name fails."""
    import ssl
    import subprocess

    def issue(name: str) -> tuple[Path, Path]:
        key, crt = workdir / f"{name}.key", workdir / f"{name}.crt"
        subprocess.run(
            ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(workdir / "r.csr"),
             "-addext", f"subjectAltName=DNS:{name}"],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(
            ["openssl", "x509", "-req", "-in", str(workdir / "r.csr"), "-CA", str(ca_crt),
             "-CAkey", str(ca_key), "-days", "2", "-copy_extensions", "copy", "-out", str(crt)],
            check=True, capture_output=True,
        )  # fmt: skip
        return crt, key

    ca_key, ca_crt = workdir / "ca.key", workdir / "ca.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", "/CN=test CA", "-days", "2", "-keyout", str(ca_key), "-out", str(ca_crt)],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_crt))  # the runner trusts the test CA only
    inv = inventory(workdir, sshd)
    for name, expected in (("localhost", 0), ("elsewhere.test", 1)):
        Recorder.seen = []
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*issue(name))
        srv.socket = context.wrap_socket(srv.socket, server_side=True)
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        try:
            text = RUNBOOK.format(port=srv.server_port, origin="").replace("http://", "https://")
            write_runbook(workdir, "probe", text)
            assert main(["run", "probe", "-i", str(inv)]) == expected, name
            assert [s["peer"] for s in Recorder.seen] == (["sshd"] if expected == 0 else [])
            if expected:
                logs = (workdir / "state" / "runs").glob("*.jsonl")
                assert any("CERTIFICATE_VERIFY_FAILED" in log.read_text() for log in logs)
        finally:
            srv.shutdown()
            srv.server_close()


def test_the_timeout_bounds_a_request_through_the_tunnel(
    workdir: Path, sshd: SSHServer, trickle: Trickle
) -> None:
    """A body that trickles a byte a second, through the host's connection: each attempt ends
    at its timeout, as a timeout, and is retried."""
    text = f"""
runbook: slow
targets: app
steps:
  - id: fetch
    http: {{url: "http://localhost:{trickle.port}/"}}
    timeout: 1.5s
    retries: 1
"""
    write_runbook(workdir, "slow", text)
    began = time.monotonic()
    assert main(["run", "slow", "-i", str(inventory(workdir, sshd))]) == 1
    assert time.monotonic() - began < 8
    fetch = [e for e in run_events(workdir / "state") if e["event"] == "step.finished"]
    assert [(f["timed_out"], f["reason"]) for f in fetch] == [(True, "timed out after 1.5s")] * 2
    assert all(f["duration"] < 2.5 for f in fetch)
    assert trickle.connections == 2
