"""The helper protocol against hostile bytes (real sshd on loopback; no mocks).

A `sudo: USER` step's sub-helper runs as USER: any process of USER could take a copy of its
stdout (pidfd_getfd or ptrace, while it is dumpable) and write frames into it. The SSH
user's helper must relay only frames about USER's own commands, of the kinds a sub-helper sends:
anything else drops that sub-helper. And the runner must take anything malformed from a host's
helper as that host's protocol error, never an exception inside asyncssh that wedges the run.

The writes below come from this test, as root (a process of USER cannot take its sub-helper's
fds any more: test_a_sudo_user_cannot_take_its_sub_helpers_fds), so that they reach exactly
the pipe such a process would have written to.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import alive
from sshd_fixture import SSHServer
from test_ssh_executor import arun, executor

from runner.execution.executors.base import CommandRequest, CommandResult
from runner.execution.executors.ssh import SSHExecutor

pytestmark = [
    pytest.mark.ssh,
    pytest.mark.skipif(os.geteuid() != 0, reason="writes into other users' pipes: needs root"),
    pytest.mark.skipif(shutil.which("sudo") is None, reason="sudo is not installed"),
]

HEADER = struct.Struct(">cII")


def frame(kind: bytes, cid: int, payload: bytes, size: int | None = None) -> bytes:
    return HEADER.pack(kind, cid, len(payload) if size is None else size) + payload


def inject(pid: int, data: bytes) -> None:
    """Write into the stdout of process pid, as a process holding a copy of that fd would."""
    with open(f"/proc/{pid}/fd/1", "wb", buffering=0) as pipe:
        pipe.write(data)


async def run(ex: SSHExecutor, command: str, **kw: Any) -> CommandResult:
    return await ex.run(CommandRequest(command, **kw), lambda s, b: None)


# Commands on a connection are numbered from 1 in the order they are sent: here 1 finds the
# sub-helper, 2 is `nobody`'s command running meanwhile, 3 is root's.
NOBODY, ROOT = 2, 3
FORGED: dict[str, bytes] = {
    # the repro of the report: root's failing command made to succeed, with made-up output
    "root-result": frame(b"O", ROOT, b"FORGED: all healthy\n") + frame(b"X", ROOT, b"0"),
    "root-output": frame(b"E", ROOT, b"FORGED\n"),
    # about its own command, but what the runner cannot parse: must not reach it
    "bad-status": frame(b"X", NOBODY, b"not-a-number"),
    "unknown-kind": frame(b"Z", NOBODY, b""),
    "a-runner-kind": frame(b"K", ROOT, b"KILL"),
    "second-hello": frame(b"H", 0, b""),
    "oversized": frame(b"O", NOBODY, b"x" * 100, size=0xFFFFFFFF),  # a 4 GiB frame, begun
}


@pytest.mark.parametrize("forged", list(FORGED))
def test_a_sudo_user_cannot_forge_or_wedge_root_commands(
    sshd: SSHServer, ssh_path: str, forged: str
) -> None:
    assert ssh_path == "helper"  # (named, so not run again with a channel per command)

    async def go() -> tuple[int, list[CommandResult]]:
        ex = executor(sshd)
        try:
            first = await run(ex, "echo $PPID", sudo="nobody")  # its parent: the sub-helper
            sub = int(first.stdout.text)
            theirs = asyncio.ensure_future(run(ex, "sleep 5", sudo="nobody", timeout=10))
            root = asyncio.ensure_future(run(ex, "sleep 1; echo real output; exit 7", timeout=10))
            await asyncio.sleep(0.3)
            inject(sub, FORGED[forged])
            results = [await theirs, await root]
            results.append(await run(ex, "echo still here", timeout=10))
            results.append(await run(ex, "id -un", sudo="nobody", timeout=10))
            return sub, results
        finally:
            await ex.close()

    sub, (theirs, root, after, again) = arun(go())
    # root's command: its own result, whatever was written
    assert (root.exit, root.stdout.text, root.stderr.text) == (7, "real output\n", "")
    # the host's channel goes on, for root
    assert (after.exit, after.stdout.text, after.error) == (0, "still here\n", "")
    # nobody's sub-helper was dropped at once: its command failed saying why, and so does the
    # next command for nobody on this connection
    for result in (theirs, again):
        assert result.exit == 255 and result.duration < 4, result
        assert "broke the helper protocol" in result.stderr.text, result.stderr.text
        assert "sudo nobody" in result.stderr.text
    deadline = time.monotonic() + 5
    while alive(sub) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(sub), "the dropped sub-helper is still running"


def test_a_sudo_user_holding_its_helpers_stderr_cannot_wedge_the_host(
    sshd: SSHServer, ssh_path: str
) -> None:
    """When a sudo helper dies, what sudo said is read from its stderr without waiting for the
    pipe's end, which a process of its user holding a copy of the fd would put off for ever."""
    assert ssh_path == "helper"

    async def go() -> tuple[CommandResult, CommandResult]:
        ex = executor(sshd)
        try:
            sub = int((await run(ex, "echo $PPID", sudo="nobody")).stdout.text)
            with open(f"/proc/{sub}/fd/2", "wb", buffering=0):  # a copy, kept open
                os.kill(sub, signal.SIGKILL)  # as any process of its user may
                await asyncio.sleep(0.3)
                return await run(ex, "echo fine", timeout=5), await run(
                    ex, "id -un", sudo="nobody", timeout=5
                )
        finally:
            await ex.close()

    root, again = arun(go())
    assert (root.exit, root.stdout.text, root.timed_out) == (0, "fine\n", False), root
    assert (again.exit, again.stdout.text) == (0, "nobody\n"), again  # a new helper for nobody


def test_a_sudo_user_stopping_its_helper_cannot_wedge_the_host(
    sshd: SSHServer, ssh_path: str
) -> None:
    """Commands for a stopped helper wait for it (their timeout applies), not the SSH user's
    helper: before, it blocked writing a command's text into the full pipe, and every command
    on the host with it; and at the session's end it waited for ever for sudo, which stops
    with its command."""
    assert ssh_path == "helper"
    big = ": " + "x" * 300_000  # more than a pipe holds

    async def go() -> tuple[list[int], CommandResult, CommandResult]:
        ex = executor(sshd)
        try:
            sub = int((await run(ex, "echo $PPID", sudo="nobody")).stdout.text)
            helper = int((await run(ex, "echo $PPID")).stdout.text)
            sudo = int(Path(f"/proc/{sub}/stat").read_text().rsplit(")", 1)[1].split()[1])
            os.kill(sub, signal.SIGSTOP)  # as any process of its user may
            theirs = asyncio.ensure_future(run(ex, big, sudo="nobody", timeout=1))
            await asyncio.sleep(0.3)
            return [sub, sudo, helper], await run(ex, "echo fine", timeout=5), await theirs
        finally:
            await ex.close()

    pids, root, theirs = arun(go())
    try:
        assert (root.exit, root.stdout.text, root.timed_out) == (0, "fine\n", False), root
        assert theirs.timed_out, theirs
        deadline = time.monotonic() + 5  # both gone with the session
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in pids if alive(pid)], "still running"
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_what_sudo_says_when_it_refuses_is_the_commands_stderr(
    sshd: SSHServer, ssh_path: str
) -> None:
    assert ssh_path == "helper"

    async def go() -> CommandResult:
        ex = executor(sshd)
        try:
            return await run(ex, "id -un", sudo="no-such-user-here")
        finally:
            await ex.close()

    refused = arun(go())
    assert refused.exit == 1 and "unknown user no-such-user-here" in refused.stderr.text


@pytest.mark.parametrize(
    "bad",
    [
        "bad-status",
        "empty-status",
        "huge-status",
        "unknown-kind",
        "oversized",
        "output-for-no-command",
        "exit-for-no-command",
        "second-hello",
    ],
)
def test_a_host_breaking_the_protocol_fails_its_commands_and_never_wedges(
    sshd: SSHServer, ssh_path: str, bad: str
) -> None:
    assert ssh_path == "helper"  # (named, so not run again with a channel per command)
    garbage = {
        "bad-status": frame(b"X", 2, b"not-a-number"),
        "empty-status": frame(b"X", 2, b""),
        "huge-status": frame(b"X", 2, b"9" * 5000),
        "unknown-kind": frame(b"Z", 2, b"hello"),
        "oversized": frame(b"O", 2, b"x" * 100, size=0xFFFFFFFF),
        "output-for-no-command": frame(b"O", 99, b"who is this for?\n"),
        "exit-for-no-command": frame(b"X", 1, b"0"),  # command 1 has ended
        "second-hello": frame(b"H", 0, b""),
    }[bad]

    async def go() -> tuple[CommandResult, CommandResult]:
        ex = executor(sshd)
        try:
            first = await run(ex, "echo $PPID")  # its parent: the SSH user's helper
            running = asyncio.ensure_future(run(ex, "sleep 3; exit 3", timeout=10))
            await asyncio.sleep(0.3)
            inject(int(first.stdout.text), garbage)
            broken = await running
            return broken, await run(ex, "echo next", timeout=10)
        finally:
            await ex.close()

    start = time.monotonic()
    broken, after = arun(go())
    # at once, not at the command's end or its timeout
    assert time.monotonic() - start < 2.5
    assert broken.exit == 255 and "broke the helper protocol" in broken.error, broken
    assert broken.error.startswith("h1: ")
    # the next command reconnects and starts a helper afresh
    assert (after.exit, after.stdout.text) == (0, "next\n"), after


# pidfd_getfd(2) (syscall 438 on every architecture): a copy of another process's fd, allowed
# to a process of the same user while the other is dumpable. (Opening /proc/PID/fd/1 is refused
# anyway: the pipe was made by the SSH user's helper, and a pipe's inode is its maker's, 0600.)
TAKE_FD = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(438, os.pidfd_open(os.getppid()), 1, 0)
print("took it" if fd >= 0 else "refused: " + os.strerror(ctypes.get_errno()))
"""


def test_a_sudo_user_cannot_take_its_sub_helpers_fds(sshd: SSHServer, ssh_path: str) -> None:
    """The helpers are not dumpable: a process of the same user can neither ptrace them nor
    take their fds (pidfd_getfd: the same check, PTRACE_MODE_ATTACH)."""
    assert ssh_path == "helper"  # (named, so not run again with a channel per command)
    ex = executor(sshd)

    async def go() -> CommandResult:
        try:
            return await run(ex, f"exec python3 -c {shlex.quote(TAKE_FD)}", sudo="nobody")
        finally:
            await ex.close()

    result = arun(go())
    assert result.stdout.text == "refused: Operation not permitted\n", result
