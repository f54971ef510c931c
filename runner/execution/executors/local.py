"""Run commands on this machine: `/bin/sh -c` in its own process group.

A timeout (or cancellation) kills the whole group: SIGTERM, then SIGKILL after a grace period,
so a child that ignores SIGTERM or leaves grandchildren behind still goes. Then the step ends: a
process that left the group (`setsid`, a daemon's double fork) and still holds its stdout or
stderr is waited for only until the grace is over, as the SSH helper does, and what it prints
after that is not recorded (the stream's record says `cut`). Without a kill, a step ends when its
shell has exited and both pipes are closed: a process it started in the background that keeps
them open is waited for, as a shell's `$(…)` would (and as over SSH).

The group dies with the runner too, however the runner dies (SIGKILL, the OOM killer): the
watcher of lifeline.py kills it.

The process is spawned directly (vfork/exec, synchronously: nothing can interrupt a start half
done) and watched from the event loop: its two pipes and a pidfd for its exit. asyncio's own
subprocess machinery costs a thread per process to wait for it (Python < 3.12) and ~20 loop
iterations a command; this is 4. See bench/README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import subprocess
import time

from runner.execution.executors.base import (
    CommandRequest,
    CommandResult,
    Digests,
    OpenTCP,
    OutputCallback,
    OutputDigest,
    wrap_command,
)
from runner.execution.executors.lifeline import LIFELINE
from runner.execution.executors.remote_helper import COMMAND_VAR, RUN_FROM_ENV
from runner.format.params import without_runner_secrets

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL, and the most the pipes are waited for
LAST_READ = 0.1  # ... or this long after the group is dead (SIGKILL, or no grace)
# Waits for the runner's go (one line on stdin), then gives the command /dev/null as stdin.
_GATE = "read -r _ || exit 125; exec </dev/null\n"
_CHUNK = 1 << 20
_F_SETPIPE_SZ = 1031  # Linux: a 1 MiB pipe, so a command printing a lot wakes us 16x less often


class LocalExecutor:
    def __init__(self, name: str = "local") -> None:
        self.name = name
        self._as_root = os.geteuid() == 0
        # once: a copy of os.environ costs ~20 us a command
        self._environ = without_runner_secrets(os.environ)
        self.kill_grace = KILL_GRACE  # hurry() makes it 0: straight to SIGKILL

    def hurry(self) -> None:
        """A second interrupt: kill what is still running without the SIGTERM grace."""
        self.kill_grace = 0.0

    async def connect(self) -> None:
        return None  # nothing to open: this machine

    @property
    def connected(self) -> bool:
        return True

    @property
    def tunnel(self) -> OpenTCP | None:
        return None  # an http: step's request from this host is the runner's own

    async def run(
        self, request: CommandRequest, on_output: OutputCallback, into: Digests | None = None
    ) -> CommandResult:
        # cwd and sudo are applied in the shell text, the same way for local and SSH hosts
        command = wrap_command(request, as_root=self._as_root)
        # the text goes in the environment, not in /bin/sh's arguments, which `ps` shows everyone
        env = {**self._environ, **request.env, COMMAND_VAR: command}
        start = time.monotonic()
        gate = request.ready is not None
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", _GATE + RUN_FROM_ENV if gate else RUN_FROM_ENV],
                stdin=subprocess.PIPE if gate else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,  # own process group: a timeout kills all of it
            )
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the text
            return CommandResult(exit=127, error=f"cannot start /bin/sh: {exc}", duration=0.0)
        # before the gate opens: a runner that dies after this point takes the group with it
        slot = LIFELINE.hold(proc.pid)
        try:
            return await self._watch(proc, request, on_output, into, start)
        finally:
            LIFELINE.release(slot)

    async def _watch(
        self,
        proc: subprocess.Popen[bytes],
        request: CommandRequest,
        on_output: OutputCallback,
        into: Digests | None,
        start: float,
    ) -> CommandResult:
        if request.ready is not None and proc.stdin is not None:
            # The shell starts (exec, its own start-up) on another core while the journal syncs;
            # it runs the command only once told to, after the sync. If the sync fails, closing
            # the gate unopened makes it exit 125 without running anything.
            try:
                request.ready()
                proc.stdin.write(b"\n")
            finally:
                with contextlib.suppress(BrokenPipeError):  # killed meanwhile: nothing ran
                    proc.stdin.close()
        out, err = into or (OutputDigest(), OutputDigest())
        child = _Child(proc, out, err, on_output)
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.shield(child.done), request.timeout)
        except asyncio.TimeoutError:
            timed_out = True
            await child.stop(self.kill_grace)
        except asyncio.CancelledError:
            await child.stop(self.kill_grace)
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


class _Child:
    """Pumps a process's stdout and stderr into digests and the callback; `done` resolves once
    both pipes are at EOF and the process has exited (a grandchild holding a pipe is waited for,
    as a shell's `$(…)` would). After a kill, stop() waits for that only until the grace is
    over."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        out: OutputDigest,
        err: OutputDigest,
        cb: OutputCallback,
    ) -> None:
        self.proc = proc
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.exited: asyncio.Future[None] = self.loop.create_future()
        self._open = 3
        self._cb = cb
        assert proc.stdout is not None and proc.stderr is not None
        self._streams = ((proc.stdout, out, "stdout"), (proc.stderr, err, "stderr"))
        for stream, digest, name in self._streams:
            fd = stream.fileno()
            os.set_blocking(fd, False)
            with contextlib.suppress(OSError):  # not Linux, or over the user's pipe quota
                fcntl.fcntl(fd, _F_SETPIPE_SZ, _CHUNK)
            self.loop.add_reader(fd, self._read, stream, digest, name, cb)
        try:
            self._pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):  # no pidfd (not Linux, or an old kernel): a thread waits
            self._pidfd = -1
            self.loop.run_in_executor(None, proc.wait).add_done_callback(lambda _: self._reaped())
        else:
            self.loop.add_reader(self._pidfd, self._exit)

    async def stop(self, grace: float) -> None:
        """Kill the group, then wait for the shell's exit and the pipes' EOF until the grace is
        over (at least LAST_READ), and stop reading: a process that left the group may hold a
        pipe for ever."""
        until = self.loop.time() + grace
        try:
            await _kill_group(self, grace)
            left = max(until - self.loop.time(), LAST_READ)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.done), left)
        finally:  # a second cancellation too: it stops the waiting, not the closing
            self._close_pipes()

    def _close_pipes(self) -> None:
        """Read what a pipe still open holds now (a few chunks at most), then close it: what
        would have come after is cut, and its digest says so."""
        for stream, digest, name in self._streams:
            if stream.closed:
                continue
            fd = stream.fileno()
            self.loop.remove_reader(fd)
            digest.cut = True
            for _ in range(4):
                try:
                    chunk = os.read(fd, _CHUNK)
                except OSError:  # BlockingIOError: nothing there now
                    break
                if not chunk:  # its end came after all
                    digest.cut = False
                    break
                digest.feed(chunk)
                self._cb(name, chunk)
            stream.close()

    def _read(self, stream: object, digest: OutputDigest, name: str, cb: OutputCallback) -> None:
        fd = stream.fileno()  # type: ignore[attr-defined]
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:
            return
        if chunk:
            digest.feed(chunk)
            cb(name, chunk)
            return
        self.loop.remove_reader(fd)
        stream.close()  # type: ignore[attr-defined]
        self._closed()

    def _exit(self) -> None:
        self.loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self.proc.wait()  # the pidfd is readable: it has exited, this reaps at once
        self._reaped()

    def _reaped(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)
        self._closed()

    def _closed(self) -> None:
        self._open -= 1
        if self._open == 0 and not self.done.done():
            self.done.set_result(None)


async def _kill_group(child: _Child, grace: float) -> None:
    pid = child.proc.pid
    try:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                return
            try:
                await asyncio.wait_for(asyncio.shield(child.exited), wait)
                # the shell may be gone while a grandchild that ignores TERM lives on in the group
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            except asyncio.TimeoutError:
                continue
    except asyncio.CancelledError:  # interrupted again while waiting out the grace: no more grace
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        raise
