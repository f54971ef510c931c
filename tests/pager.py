"""A small HTTP receiver on loopback standing in for a pager (PagerDuty, Slack, a webhook): it
records every POST and answers `GET /ack/<level>` with whether that level has acknowledged."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


class Pager:
    def __init__(self) -> None:
        self.pages: list[dict[str, Any]] = []  # {"path": ..., "body": parsed JSON}
        self.acking: set[str] = set()  # levels that acknowledge when asked
        self.polls: list[str] = []
        self.raw: dict[str, tuple[int, bytes]] = {}  # a level's ack answer as it is: status, body
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    """A real HTTP server on a free loopback port, in a thread, while the block runs: its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def pager() -> Iterator[Pager]:
    state = Pager()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.pages.append({"path": self.path, "body": json.loads(raw)})
            self._answer(202, {"status": "success", "message": "Event processed"})

        def do_GET(self) -> None:
            level = self.path.rsplit("/", 1)[-1]
            state.polls.append(level)
            if level in state.raw:
                code, raw = state.raw[level]
                self.send_response(code)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
                return
            self._answer(200, {"acknowledged": level in state.acking})

        def _answer(self, code: int, data: dict[str, Any]) -> None:
            out = json.dumps(data).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *_: object) -> None:
            pass

    with serving(Handler) as port:
        state.port = port
        yield state
