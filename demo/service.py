#!/usr/bin/env python3
"""The demo target's running service: answers `GET /health` the way the seed runbook describes.

    python3 demo/service.py [--app-dir .demo/polymarket-copy-bot] [--port 18080] [--host 127.0.0.1]

Normally started by `demo/botctl start`, which stands in for systemd. The answer has the seed's
"Health Check Output Interpretation" shape, plus the running release and the uptime:

    {"status": "healthy", "issues_found": 0, "warnings_found": 0,
     "checks_performed": ["service_status", "process_health", "resource_usage",
                          "network_connectivity"],
     "version": "1.0.0", "uptime_seconds": 12}

The status is "healthy" unless `<app_dir>/.health_override` holds `degraded` or `unhealthy`, so that
tests can break the service on purpose; it is re-read on every request. "unhealthy" answers 503.
Without an override, a `HEALTH` file in the running release (`<app_dir>/current/HEALTH`) is read the
same way: a release built broken on purpose (the rolling-update test) is unhealthy once deployed.

`POST /rpc` answers the JSON-RPC 2.0 method `eth_blockNumber` (a block number that grows with the
uptime), standing in for the seed's `https://polygon-rpc.com/`; other methods get error -32601.
`version` is the name of the release the `<app_dir>/current` symlink points at, read per request,
so switching the link is visible at once (a real bot would need a restart; the runbooks restart).
SIGHUP logs "reloaded" (like `systemctl reload`); SIGTERM stops cleanly. Logs go to
`<app_dir>/logs/service.log`. Stdlib only; Python 3.10+.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

CHECKS = ["service_status", "process_health", "resource_usage", "network_connectivity"]
STATUSES = ("healthy", "degraded", "unhealthy")

log = logging.getLogger("polymarket_bot.service")


def read_status(app_dir: Path) -> str:
    for source in (app_dir / ".health_override", app_dir / "current" / "HEALTH"):
        try:
            wanted = source.read_text(encoding="utf-8").strip().lower()
        except OSError:
            continue
        return wanted if wanted in STATUSES else "healthy"
    return "healthy"


def read_version(app_dir: Path) -> str:
    try:
        return Path(os.readlink(app_dir / "current")).name
    except OSError:
        return "unknown"


def health_report(app_dir: Path, started: float) -> dict[str, object]:
    status = read_status(app_dir)
    return {
        "status": status,
        "issues_found": 1 if status == "unhealthy" else 0,
        "warnings_found": 1 if status == "degraded" else 0,
        "checks_performed": CHECKS,
        "version": read_version(app_dir),
        "uptime_seconds": int(time.monotonic() - started),
    }


class Handler(BaseHTTPRequestHandler):
    server_version = "polymarket-bot-demo"
    app_dir: Path
    started: float

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/health":
            self._send(HTTPStatus.NOT_FOUND, {"error": "not found", "path": self.path})
            return
        report = health_report(self.app_dir, self.started)
        status = report["status"]
        code = HTTPStatus.SERVICE_UNAVAILABLE if status == "unhealthy" else HTTPStatus.OK
        # WARNING, not ERROR, for a bad state: the log scan in the health check counts ERROR lines,
        # and a test that breaks the service on purpose should not also dirty the logs.
        level = logging.INFO if status == "healthy" else logging.WARNING
        log.log(
            level,
            "Health check: %s (%s issues, %s warnings)",
            status,
            report["issues_found"],
            report["warnings_found"],
        )
        self._send(code, report)

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/rpc":
            self._send(HTTPStatus.NOT_FOUND, {"error": "not found", "path": self.path})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            req = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            req = None
        if not isinstance(req, dict):
            err = {"code": -32700, "message": "Parse error"}
            self._send(HTTPStatus.OK, {"jsonrpc": "2.0", "id": None, "error": err})
            return
        answer: dict[str, object] = {"jsonrpc": "2.0", "id": req.get("id")}
        if req.get("method") == "eth_blockNumber":
            # Polygon makes a block about every 2 s; start from a plausible height.
            answer["result"] = hex(65_000_000 + int(time.monotonic() - self.started) // 2)
        else:
            answer["error"] = {"code": -32601, "message": "Method not found"}
        log.info("RPC %s", req.get("method"))
        self._send(HTTPStatus.OK, answer)

    def _send(self, code: HTTPStatus, body: dict[str, object]) -> None:
        data = (json.dumps(body) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        # botctl start waits for its own process to answer, not whatever else holds the port.
        self.send_header("X-Pid", str(os.getpid()))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Demo Polymarket bot: serves GET /health.")
    parser.add_argument("--app-dir", default=".demo/polymarket-copy-bot")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)

    app_dir = Path(args.app_dir).resolve()
    if not app_dir.is_dir():
        print(f"service: app dir {app_dir} does not exist (run demo/setup.py)", file=sys.stderr)
        return 1
    (app_dir / "logs").mkdir(exist_ok=True)
    logging.basicConfig(
        filename=app_dir / "logs" / "service.log",
        level=logging.INFO,
        format="%(asctime)s - %(name)s - %(levelname)s - %(message)s",
    )

    # Own session: a runner that kills the process group of `botctl start` on a timeout must not
    # take the service down with it (under systemd the service is never the caller's child).
    with contextlib.suppress(OSError):  # already a group leader (from an interactive shell)
        os.setsid()

    Handler.app_dir = app_dir
    Handler.started = time.monotonic()
    try:
        server = ThreadingHTTPServer((args.host, args.port), Handler)
    except OSError as exc:
        log.error("Cannot listen on %s:%s: %s", args.host, args.port, exc)
        print(f"service: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    server.daemon_threads = True

    def on_hup(signum: int, frame: FrameType | None) -> None:
        log.info("Received SIGHUP: reloaded")

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # unwinds serve_forever() in the main thread

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    log.info(
        "Service started: pid %d, release %s, listening on http://%s:%d/health",
        os.getpid(),
        read_version(app_dir),
        args.host,
        args.port,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        log.info("Service stopped: pid %d", os.getpid())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
