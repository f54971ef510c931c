"""The HTTP requests of `http:` actions and of `notify:`: made by the runner (urllib, in a thread)
or, for a remote host, through its SSH connection (executors/tunnel.py), and bounded as a whole.

A socket's timeout is per operation: a server that sends its body a byte a second never trips it,
so a `timeout: 2s` request took as long as the server liked. Here the timeout is a deadline on
the whole request, connecting, the headers and the body: at the deadline (or an interrupt) the
request is cancelled, and the sockets that the thread is blocked on are shut down so that it ends
too.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import threading
from dataclasses import dataclass
from typing import Any

from runner.execution.executors.base import ConnectionFailed, OpenTCP

LIMIT = 1 << 20  # what checks may see of a body


@dataclass(frozen=True)
class Answer:
    status: int | None  # None when no answer came
    body: bytes = b""
    error: str = ""  # why no answer came
    timed_out: bool = False


async def send(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float | None,
    *,
    via: OpenTCP | None = None,  # a remote host's connection: the request is made from there
    where: str = "",  # that host's name, for the reasons
) -> Answer:
    """The request, within `timeout` seconds from its start to the end of its body."""
    if via is not None:
        from runner.execution.executors import tunnel

        request = tunnel.request(via, method, url, headers, body, timeout, where)
    else:
        request = _from_runner(method, url, headers, body, timeout)
    try:
        status, data, error = await asyncio.wait_for(request, timeout)
    except (TimeoutError, asyncio.TimeoutError):  # the deadline, or a socket's own timeout
        return Answer(None, error=f"{url}: timed out after {timeout:g}s", timed_out=True)
    except ConnectionFailed as exc:  # the host's SSH connection is gone
        return Answer(None, error=str(exc))
    return Answer(status, data, error)


async def _from_runner(
    method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float | None
) -> tuple[int | None, bytes, str]:
    sockets = _Sockets()
    try:
        return await asyncio.to_thread(_request, method, url, headers, body, timeout, sockets)
    finally:
        sockets.shut()  # cancelled (the deadline, an interrupt): the thread wakes and ends


class _Sockets:
    """The sockets of one request made in a thread, to shut down from outside it. Each is kept as
    a duplicate descriptor of its own: TLS takes the socket over (the original object no longer
    has a descriptor), and a descriptor closed by the request may be reused by another."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dups: list[socket.socket] = []
        self._shut = False

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            dup = sock.dup()
            self._dups.append(dup)
            if self._shut:  # cut off while it was connecting
                _shutdown(dup)

    def shut(self) -> None:
        with self._lock:
            self._shut = True
            for dup in self._dups:
                _shutdown(dup)

    def close(self) -> None:
        with self._lock:
            self._shut = True
            for dup in self._dups:
                dup.close()
            self._dups.clear()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # a read blocked on the socket returns at once


class _Connection(http.client.HTTPConnection):
    sockets: _Sockets  # set by _watched

    def connect(self) -> None:
        super().connect()
        self.sockets.watch(self.sock)


class _TLSConnection(http.client.HTTPSConnection, _Connection):
    """HTTPSConnection.connect calls _Connection.connect (the TCP connection, watched) before
    the TLS handshake, which a slow server can trickle too."""


def _watched(cls: type[_Connection], sockets: _Sockets) -> Any:
    def connection(*args: Any, **kwargs: Any) -> _Connection:
        conn = cls(*args, **kwargs)
        conn.sockets = sockets
        return conn

    return connection


def _request(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float | None,
    sockets: _Sockets,
) -> tuple[int | None, bytes, str]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with _opener(sockets).open(req, timeout=timeout) as resp:
            return resp.status, resp.read(LIMIT), ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(LIMIT), ""
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise exc.reason from None
        return None, b"", f"{url}: {exc.reason}"
    except TimeoutError:
        raise
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return None, b"", f"{url}: {exc or type(exc).__name__}"
    finally:
        sockets.close()


def _opener(sockets: _Sockets) -> Any:
    """An opener whose connections are watched (`_Sockets`), and whose redirects to another
    origin (scheme, host, port) do not carry the credentials: urllib forwards every header, so
    an `Authorization: Bearer {{ token }}` went wherever the server redirected (as curl and
    requests do, drop them). Built on use: urllib.request is slow to import, and most runs make
    no HTTP request."""
    import urllib.request

    class SameOriginCredentials(urllib.request.HTTPRedirectHandler):
        def redirect_request(
            self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
        ) -> Any:
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
            if new is not None and _origin(newurl) != _origin(req.full_url):
                for name in ("Authorization", "Proxy-authorization", "Cookie"):
                    new.remove_header(name)
            return new

    class Watched(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(_watched(_Connection, sockets), req)

    class WatchedTLS(urllib.request.HTTPSHandler):
        def https_open(self, req: Any) -> Any:
            return self.do_open(_watched(_TLSConnection, sockets), req)

    return urllib.request.build_opener(SameOriginCredentials, Watched, WatchedTLS)


def _origin(url: str) -> tuple[str, str, int | None]:
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    return parts.scheme, (parts.hostname or ""), parts.port
