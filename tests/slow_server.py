"""Small real HTTP servers on loopback for the tests of `http:` steps and checks (a pytest plugin):
`starting` answers as a service that is starting up: a 502 HTML page, then an empty body, then
`{"status": "ok"}`."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest


class Starting:
    """Answers GET: first a 502 HTML page, then an empty 200, then `{"status": "ok"}`."""

    ANSWERS = ((502, b"<html><body>502 Bad Gateway</body></html>"), (200, b""))

    def __init__(self) -> None:
        self.requests = 0
        self.port = 0


@pytest.fixture
def starting() -> Iterator[Starting]:
    state = Starting()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests += 1
            answers = Starting.ANSWERS
            code, body = (
                answers[state.requests - 1]
                if state.requests <= len(answers)
                else (200, b'{"status": "ok"}')
            )
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
