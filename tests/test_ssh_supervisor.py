"""Remote commands run under a supervisor (issue 15; issue 18 item 4): a kill reaches a `sudo:`
command whoever the SSH user is, and a command dies with its SSH session. Both SSH paths: the
per-host helper and one channel per command (tests/sshd_fixture.py runs each test on both)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sshd_fixture import SSHServer, _children
from test_ssh_executor import arun, executor, run_all

from runner.execution.executors.base import CommandRequest

pytestmark = pytest.mark.ssh


def processes(marker: str) -> list[int]:
    """Live processes (any user) whose command line holds marker; the sshd is on this machine."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                stat = (cmdline.parent / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return [pid for pid in found if pid != os.getpid()]


def kill_sessions(server: SSHServer) -> None:
    """The sessions die as with a lost network: the connections' sshd processes (the privileged
    monitor and the user's process holding the socket and the session's pipes) are SIGKILLed;
    the listener stays, so the runner can reconnect."""
    monitors = server.connection_pids()
    for pid in monitors + [c for m in monitors for c in _children(m)]:
        with contextlib.suppress(OSError):  # gone with its monitor meanwhile
            if Path(f"/proc/{pid}/comm").read_text().strip() == "sshd":
                os.kill(pid, signal.SIGKILL)


def gone(marker: str, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not processes(marker)


def test_commands_run_under_the_helper_or_the_wrapper(sshd: SSHServer, ssh_path: str) -> None:
    notes: list[str] = []
    ex = executor(sshd, notify=notes.append)
    [parent] = arun(run_all(ex, "tr '\\0' ' ' < /proc/$PPID/cmdline"))
    if ssh_path == "helper":
        assert "python3 -I -S -c import os,sys,marshal;N," in parent.stdout.text
    else:
        assert parent.stdout.text.startswith("/bin/sh -c exec 3<&0")
    assert notes == []


def test_no_python_on_the_host_falls_back_to_a_channel_per_command(
    make_sshd: Callable[..., SSHServer], tmp_path: Path, ssh_path: str
) -> None:
    bare = tmp_path / "bin"  # the host's commands, without any python
    bare.mkdir()
    for d in ("/usr/bin", "/usr/sbin"):
        for entry in os.scandir(d):
            if not entry.name.startswith("python") and not (bare / entry.name).exists():
                (bare / entry.name).symlink_to(entry.path)
    server = make_sshd()
    server.stop()
    server.config.write_text(
        server.config.read_text().replace("SetEnv SHLVL=1", f"SetEnv SHLVL=1 PATH={bare}")
    )
    server.start()
    notes: list[str] = []
    ok, bad = arun(run_all(executor(server, notify=notes.append), "echo fine", "exit 3"))
    assert (ok.exit, ok.stdout.text, bad.exit) == (0, "fine\n", 3)
    if ssh_path == "helper":
        assert len(notes) == 1 and "one SSH channel per command" in notes[0]
        assert "python3" in notes[0]  # why: the shell's "python3: not found"
    else:
        assert notes == []  # RUNBOOK_SSH_HELPER=off: not a fallback, a choice


@pytest.mark.parametrize("stop", ["timeout", "cancel"])
def test_a_sudo_command_of_a_non_root_ssh_user_is_killed(
    sshd: SSHServer, sudo_login: str, stop: str
) -> None:
    """`kill -PGID` from the SSH user gets EPERM on root's processes: they must die anyway."""
    marker = f"62.{os.getpid()}{len(stop)}"
    command = f"trap '' TERM; sleep {marker} & sleep {marker}"

    async def go() -> Any:
        ex = executor(sshd, user=sudo_login)
        request = CommandRequest(command, sudo="root", timeout=0.5 if stop == "timeout" else None)
        try:
            task = asyncio.ensure_future(ex.run(request, lambda s, b: None))
            if stop == "timeout":
                return await task
            deadline = time.monotonic() + 10
            while len(processes(marker)) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return None
        finally:
            await ex.close()

    result = arun(go())
    if result is not None:
        assert result.timed_out and result.exit == -9  # TERM was ignored: KILL it took
    assert gone(marker), f"survivors: {processes(marker)}"


def test_a_sudo_command_dies_with_its_ssh_session(
    make_sshd: Callable[..., SSHServer], sudo_login: str, sshd: SSHServer
) -> None:
    """The connection goes (sshd's session processes killed, the network gone): the command,
    running as root for a non-root SSH user, must not run on while a rollback starts."""
    server = make_sshd()
    keys = Path(f"~{sudo_login}/.ssh/authorized_keys").expanduser()
    keys.write_text(keys.read_text() + (server.dir / "authorized_keys").read_text())
    marker = f"63.{os.getpid()}"

    async def go() -> Any:
        ex = executor(server, user=sudo_login)
        try:
            task = asyncio.ensure_future(
                ex.run(CommandRequest(f"sleep {marker}", sudo="root"), lambda s, b: None)
            )
            deadline = time.monotonic() + 10
            while not processes(marker) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert processes(marker), "the command never started"
            kill_sessions(server)
            return await asyncio.wait_for(task, 10)
        finally:
            await ex.close()

    lost = arun(go())
    assert lost.exit == 255 and "connection lost" in lost.error
    assert gone(marker), f"survivors: {processes(marker)}"


def test_a_run_whose_session_dies_rolls_back_only_after_the_command_died(
    workdir: Path, make_sshd: Callable[..., SSHServer], sudo_login: str
) -> None:
    """At the level a user meets it: a `sudo: root` step of a non-root SSH user loses its
    session; the failure policy rolls back, and the rollback finds the step's command gone."""
    import subprocess
    import sys

    import yaml
    from conftest import run_events, write_runbook

    server = make_sshd()
    keys = Path(f"~{sudo_login}/.ssh/authorized_keys").expanduser()
    keys.write_text(keys.read_text() + (server.dir / "authorized_keys").read_text())
    inventory = server.write_inventory(workdir / "inv.yaml", hosts=1)
    data = yaml.safe_load(inventory.read_text())
    data["hosts"]["h1"]["user"] = sudo_login
    inventory.write_text(yaml.safe_dump(data))
    marker = f"64.{os.getpid()}"
    write_runbook(
        workdir,
        "lost",
        f"""
runbook: lost
targets: h1
steps:
  - id: long
    sudo: root
    run: sleep {marker}
    rollback:
      - run: "if pgrep -f '[6]4[.]{os.getpid()}' >/dev/null; then echo still-running; else echo gone; fi"
        expect: {{stdout_contains: gone}}
""",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", "lost", "-i", str(inventory), "--yes"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not processes(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes(marker), "the step never started"
        kill_sessions(server)
        assert proc.wait(timeout=60) == 1  # failed, rolled back cleanly
    finally:
        if proc.poll() is None:
            proc.kill()
    records = run_events(workdir / "state")
    undo = [r for r in records if r["event"] == "rollback.finished"]
    assert undo and undo[0]["ok"], undo
    assert gone(marker)


@pytest.mark.parametrize(("tag", "runs"), [("ours", b"compiled"), ("cpython-01", b"source")])
def test_the_helper_bootstrap_runs_our_compiled_code_only_on_the_same_python(
    tag: str, runs: bytes
) -> None:
    """BOOT (remote_helper.py) reads a cache tag, compiled code and source; a host whose Python
    has our tag runs the compiled code, any other compiles the source."""
    import marshal
    import subprocess
    import sys

    from runner.execution.executors.remote_helper import BOOT

    ours = (sys.implementation.cache_tag or "").encode()
    label = ours if tag == "ours" else tag.encode()
    code = marshal.dumps(compile("import os; os.write(1, b'compiled')", "c", "exec"))
    payload = label + code + b"import os; os.write(1, b'source')"
    boot = BOOT % (len(payload), len(label), len(label) + len(code))
    argv = [sys.executable, "-I", "-S", "-c", boot]
    done = subprocess.run(argv, input=payload + b"frames", capture_output=True, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, runs, b"")
