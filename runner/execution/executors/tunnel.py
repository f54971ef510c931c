"""HTTP from a remote host's point of view: an `http:` request sent through the host's SSH
connection (a direct-tcpip channel), so that `http://localhost:8000/health` means the host's own
localhost, as `curl` run there would. TLS is end to end: the certificate is checked against the
URL's host name, exactly as for a request made by the runner.

The request itself is made by http.client (the runner's own client, for the same semantics) on
one end of a socket pair; the other end is pumped to and from the SSH channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import ssl
import urllib.parse
from typing import Any

from runner.execution.executors._asyncssh_import import asyncssh
from runner.execution.executors.base import OpenTCP

LIMIT = 1 << 20  # what checks may see of a body, as for requests made by the runner


class _Pair(socket.socket):
    """A socket-pair end that http.client can treat as a TCP socket (it sets TCP_NODELAY)."""

    def setsockopt(self, *args: Any) -> None:
        if args[:1] != (socket.IPPROTO_TCP,):
            super().setsockopt(*args)


async def request(
    open_tcp: OpenTCP,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float | None,
    where: str,
) -> tuple[int | None, bytes, str]:
    """(status, body, error): the same answer as a request made by the runner. The caller
    bounds the whole request (httpclient.send): cancelled, it shuts its socket down, which wakes
    the thread blocked on it. A socket's own timeout (per operation) raises TimeoutError."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None, b"", f"{url}: only http:// and https:// URLs can be requested"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        return None, b"", f"{url}: {exc}"
    try:
        remote_in, remote_out = await open_tcp(parts.hostname, port)
    except asyncssh.ChannelOpenError as exc:  # refused or unreachable, as seen by the host
        return None, b"", f"{url}: {exc.reason} (from {where})"
    ours, theirs = socket.socketpair()
    client = _Pair(fileno=ours.detach())
    local_in, local_out = await asyncio.open_connection(sock=theirs)
    pumps = [
        asyncio.ensure_future(_pump(remote_in, local_out)),
        asyncio.ensure_future(_pump(local_in, remote_out)),
    ]
    try:
        return await asyncio.to_thread(
            _exchange, client, parts, port, method, headers, body, timeout
        )
    finally:
        # a cancelled request: shutting the socket down wakes the thread blocked on it
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)
        client.close()
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        local_out.close()
        remote_out.close()


async def _pump(reader: Any, writer: Any) -> None:
    with contextlib.suppress(OSError, asyncssh.Error, ConnectionError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


def _exchange(
    sock: socket.socket,
    parts: urllib.parse.SplitResult,
    port: int,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float | None,
) -> tuple[int | None, bytes, str]:
    url = parts.geturl()
    conn: http.client.HTTPConnection
    sock.settimeout(timeout)
    host = parts.hostname or ""
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    # the connection is already made, by the host: hand it to http.client instead of dialling
    conn._create_connection = lambda *_args, **_kw: sock  # type: ignore[attr-defined]
    path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read(LIMIT), ""
    except TimeoutError:
        raise
    except (OSError, http.client.HTTPException) as exc:
        return None, b"", f"{url}: {exc or type(exc).__name__}"
    finally:
        conn.close()
