#!/usr/bin/env python3
"""An experiment, not the product: how fast would `runbook run` be over SSH if a second process
connected while the runner imports and plans? (bench/README.md, issue 15, session 5.)

    .venv/bin/python bench/transport_spike.py --state-dir D run RUNBOOK -i INVENTORY --quiet

The interpreter forks first thing. The child imports asyncio and asyncssh, reads the hosts (sent
by the parent as soon as the plan is made), connects to all of them and starts their helpers
with the runner's own SSHExecutor, then runs the commands the parent sends it and sends back
their output and status. The parent is the ordinary runner, except that its SSH hosts are
`RelayExecutor`s that talk to the child over a socketpair, so it never imports asyncssh.

Only what W2 and W3 need is relayed: commands with their env, cwd, sudo and timeout, output,
exit status. No `http:` tunnels, no kill of a command the runner cancels, no `--forks` limit on
the child's connections, no reconnection: measuring the overlap is all it is for.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HEAD = struct.Struct(">cHII")  # kind, host, command id, payload length


def _frames(buf: bytearray) -> list[tuple[bytes, int, int, bytes]]:
    out = []
    while len(buf) >= HEAD.size:
        kind, host, cid, size = HEAD.unpack_from(buf)
        if len(buf) < HEAD.size + size:
            break
        out.append((kind, host, cid, bytes(buf[HEAD.size : HEAD.size + size])))
        del buf[: HEAD.size + size]
    return out


# --- the child: connections, helpers, commands -----------------------------------------------


def child(sock: socket.socket) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner handles Ctrl-C
    from runner import dataclasscode

    dataclasscode.install()  # as the runner does (its executors' dataclasses)
    import asyncio
    import json

    from runner.execution.executors._asyncssh_import import asyncssh  # noqa: F401
    from runner.execution.executors.base import CommandRequest, ConnectionFailed
    from runner.execution.executors.ssh import SSHExecutor

    async def serve() -> None:
        reader, writer = await asyncio.open_connection(sock=sock)

        def send(kind: bytes, host: int, cid: int, payload: bytes) -> None:
            writer.write(HEAD.pack(kind, host, cid, len(payload)) + payload)

        hosts = json.loads(await reader.readline())
        executors = [SSHExecutor(**h) for h in hosts]

        async def up(i: int, ex: SSHExecutor) -> None:
            try:
                await ex.connect()
                conn = ex._conn
                assert conn is not None
                await ex._helper_for(conn)
            except ConnectionFailed as exc:
                send(b"C", i, 0, str(exc).encode())
            else:
                send(b"C", i, 0, b"")

        async def run_one(i: int, cid: int, req: dict[str, object]) -> None:
            def out(stream: str, data: bytes) -> None:
                send(b"O" if stream == "stdout" else b"E", i, cid, data)

            result = await executors[i].run(CommandRequest(**req), out)  # type: ignore[arg-type]
            status = {"exit": result.exit, "timed_out": result.timed_out, "error": result.error}
            send(b"X", i, cid, json.dumps(status).encode())

        tasks = {asyncio.create_task(up(i, ex)) for i, ex in enumerate(executors)}
        buf = bytearray()
        while data := await reader.read(1 << 16):
            buf += data
            for kind, host, cid, payload in _frames(buf):
                if kind == b"R":
                    task = asyncio.create_task(run_one(host, cid, json.loads(payload)))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        for ex in executors:
            await ex.close()

    asyncio.run(serve())


# --- the parent: the runner, with relayed SSH hosts ------------------------------------------


def parent(sock: socket.socket) -> int:
    from runner import dataclasscode

    dataclasscode.install()
    import asyncio
    import itertools
    import json
    import time
    from typing import Any

    import runner.commands.run as run_command
    from runner.cli import main
    from runner.execution.executors import pool
    from runner.execution.executors.base import (
        CommandRequest,
        CommandResult,
        ConnectionFailed,
        OutputDigest,
    )

    index: dict[str, int] = {}

    planned = run_command.planned

    def planned_and_sent(*a: Any, **k: Any) -> Any:
        plan, saved = planned(*a, **k)
        ssh = [h for h in plan.hosts if h.connection != "local"]
        index.update((h.name, i) for i, h in enumerate(ssh))
        settings = [pool.ssh_settings(plan.inventory, h) for h in ssh]  # as the runner's
        sock.sendall(json.dumps(settings).encode() + b"\n")
        return plan, saved

    run_command.planned = planned_and_sent

    class Relay:
        def __init__(self) -> None:
            self.loop = asyncio.get_running_loop()
            self.buf = bytearray()
            self.up: dict[int, asyncio.Future[str]] = {}
            self.commands: dict[tuple[int, int], Any] = {}
            sock.setblocking(False)
            self.loop.add_reader(sock.fileno(), self._read)

        def hello(self, host: int) -> asyncio.Future[str]:
            if host not in self.up:
                self.up[host] = self.loop.create_future()
            return self.up[host]

        def _read(self) -> None:
            try:
                data = sock.recv(1 << 16)
            except BlockingIOError:
                return
            if not data:  # the child is gone: what waits on it would wait for ever
                self.loop.remove_reader(sock.fileno())
                raise SystemExit("transport_spike: the child process died")
            self.buf += data
            for kind, host, cid, payload in _frames(self.buf):
                if kind == b"C":
                    self.hello(host).set_result(payload.decode())
                    continue
                cmd = self.commands.get((host, cid))
                if cmd is None:
                    continue
                if kind == b"X":
                    del self.commands[(host, cid)]
                    cmd["done"].set_result(json.loads(payload))
                else:
                    stream = "stdout" if kind == b"O" else "stderr"
                    cmd[stream].feed(payload)
                    cmd["cb"](stream, payload)

    relays: list[Relay] = []
    ids = itertools.count(1)

    class RelayExecutor:
        def __init__(self, name: str) -> None:
            self.name, self.host = name, index[name]

        def relay(self) -> Relay:
            if not relays:
                relays.append(Relay())
            return relays[0]

        async def connect(self) -> None:
            reason = await self.relay().hello(self.host)
            if reason:
                raise ConnectionFailed(reason)

        @property
        def connected(self) -> bool:
            f = self.relay().hello(self.host)
            return f.done() and not f.result()

        @property
        def tunnel(self) -> None:
            return None

        def hurry(self) -> None:
            pass

        async def close(self) -> None:
            pass

        async def run(self, request: CommandRequest, on_output: Any, into: Any = None) -> Any:
            start = time.monotonic()
            try:
                await self.connect()
            except ConnectionFailed as exc:
                return CommandResult(exit=255, error=str(exc))
            if request.ready is not None:
                request.ready()
            out, err = into or (OutputDigest(), OutputDigest())
            cid = next(ids)
            relay = self.relay()
            done = relay.loop.create_future()
            relay.commands[(self.host, cid)] = {
                "stdout": out,
                "stderr": err,
                "cb": on_output,
                "done": done,
            }
            fields = {
                "command": request.command,
                "env": dict(request.env),
                "cwd": request.cwd,
                "sudo": request.sudo,
                "timeout": request.timeout,
            }
            payload = json.dumps(fields).encode()
            sock.send(HEAD.pack(b"R", self.host, cid, len(payload)) + payload)
            status = await done
            return CommandResult(
                exit=status["exit"],
                stdout=out.freeze(),
                stderr=err.freeze(),
                duration=time.monotonic() - start,
                timed_out=status["timed_out"],
                error=status["error"],
            )

    make = pool.Executors._make

    def relayed(self: Any, host: Any) -> Any:
        return make(self, host) if host.connection == "local" else RelayExecutor(host.name)

    pool.Executors._make = relayed  # type: ignore[method-assign]
    sys.argv[0] = "runbook"
    code = main()
    dataclasscode.save()
    return code


if __name__ == "__main__":
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        ours.close()
        child(theirs)
        os._exit(0)
    theirs.close()
    rc = parent(ours)
    ours.shutdown(socket.SHUT_WR)  # the child closes its connections and exits
    os.waitpid(pid, 0)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
