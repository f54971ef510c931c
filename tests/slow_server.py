"""Small real HTTP servers on loopback for the tests of `http:` steps and checks (a pytest plugin):
`trickle` answers a status line and headers at once, then a body of 1 MB one byte a second (a
stuck upstream, a slowloris proxy; it gives up after `GIVE_UP` seconds, so that a client with no
bound does not hang the test run); `starting` answers as a service that is starting up: a 502
HTML page, then an empty body, then `{"status": "ok"}`."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest
from pager import serving


class Trickle:
    GIVE_UP = 12  # seconds

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed at the end of the test
                return
            self.connections += 1
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    def answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
                for _ in range(self.GIVE_UP):  # or until the client gives up or the test ends
                    if self.stop.wait(1.0):
                        break
                    conn.sendall(b"x")
            except OSError:
                pass


@pytest.fixture
def trickle() -> Iterator[Trickle]:
    server = Trickle()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield server
    server.stop.set()
    server.listener.close()
    thread.join(timeout=5)


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

    with serving(Handler) as port:
        state.port = port
        yield state
