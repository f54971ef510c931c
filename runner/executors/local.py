"""Run commands on this machine: `/bin/sh -c` in its own process group.

A timeout (or cancellation) kills the whole group: SIGTERM, then SIGKILL after a grace period,
so a child that ignores SIGTERM or leaves grandchildren behind still goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

from runner.executors.base import (
    CommandRequest,
    CommandResult,
    Digests,
    OutputCallback,
    OutputDigest,
    wrap_command,
)

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
_CHUNK = 65536


class LocalExecutor:
    def __init__(self, name: str = "local") -> None:
        self.name = name
        self._as_root = os.geteuid() == 0
        self.kill_grace = KILL_GRACE  # hurry() makes it 0: straight to SIGKILL

    def hurry(self) -> None:
        """A second interrupt: kill what is still running without the SIGTERM grace."""
        self.kill_grace = 0.0

    async def run(
        self, request: CommandRequest, on_output: OutputCallback, into: Digests | None = None
    ) -> CommandResult:
        # cwd and sudo are applied in the shell text, the same way for local and SSH hosts
        command = wrap_command(request, as_root=self._as_root)
        env = None
        if request.env:
            env = dict(os.environ)
            env.update(request.env)
        start = time.monotonic()
        spawn = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,  # own process group: a timeout kills all of it
            )
        )
        try:
            proc = await asyncio.shield(spawn)
        except OSError as exc:
            return CommandResult(exit=127, error=f"cannot start /bin/sh: {exc}", duration=0.0)
        except asyncio.CancelledError:
            # Cancelled (Ctrl-C) while the process was starting. Left to itself, asyncio would
            # kill the shell alone and then wait for its pipes, which the shell's children hold
            # open: a hang, and survivors. Let it start, then kill its whole group.
            with contextlib.suppress(OSError):
                await _kill_group(await spawn, self.kill_grace)
            raise
        out, err = into or (OutputDigest(), OutputDigest())
        assert proc.stdout is not None and proc.stderr is not None
        readers = asyncio.gather(
            _pump(proc.stdout, out, "stdout", on_output),
            _pump(proc.stderr, err, "stderr", on_output),
            proc.wait(),
        )
        timed_out = False
        try:
            if request.timeout is not None:
                await asyncio.wait_for(asyncio.shield(readers), request.timeout)
            else:
                await asyncio.shield(readers)
        except asyncio.TimeoutError:
            timed_out = True
            await _kill_group(proc, self.kill_grace)
            await readers
        except asyncio.CancelledError:
            await _kill_group(proc, self.kill_grace)
            await asyncio.shield(readers)
            raise
        rc = proc.returncode if proc.returncode is not None else -9
        return CommandResult(
            exit=rc,
            stdout=out.freeze(),
            stderr=err.freeze(),
            duration=time.monotonic() - start,
            timed_out=timed_out,
        )

    async def close(self) -> None:
        return None


async def _pump(
    stream: asyncio.StreamReader, digest: OutputDigest, name: str, on_output: OutputCallback
) -> None:
    while True:
        chunk = await stream.read(_CHUNK)
        if not chunk:
            return
        digest.feed(chunk)
        on_output(name, chunk)


async def _kill_group(proc: asyncio.subprocess.Process, grace: float) -> None:
    try:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), wait)
                # the shell may be gone while a grandchild that ignores TERM lives on in the group
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            except asyncio.TimeoutError:
                continue
    except asyncio.CancelledError:  # interrupted again while waiting out the grace: no more grace
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
