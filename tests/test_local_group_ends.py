"""A local step ends when it is stopped, and does not outlive the runner (probe report, findings
3 and 5).

- A process that left the step's process group (`setsid`, a daemonising start script that does
  not redirect its output) holds the step's stdout. A timeout or a first Ctrl-C kills the group;
  the step then ends after the kill's grace, as over SSH, instead of waiting for the pipe.
- The runner SIGKILLed (the OOM killer) during a local step: the step's process group dies with
  it, as a remote one dies with its SSH session, so `resume --rerun-unknown` cannot start a second
  copy beside the first.

The runner runs as a real process; the processes it starts are looked for in /proc.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import alive, run_events, running, write_runbook
from test_interrupts import dies_within, named, spawn, wait_for_file


@pytest.fixture
def daemon() -> Iterator[str]:
    """The marker of a `setsid sleep` the test starts through a step; killed afterwards."""
    marker = f"30.{os.getpid()}{int(time.monotonic() * 1000) % 100000}"
    yield marker
    for pid in running(marker):
        os.kill(pid, signal.SIGKILL)


def daemonising(marker: str, timeout: str = "") -> str:
    """A step that starts a process in a session of its own, still holding the step's stdout,
    then works on (its shell's pid in `pid`)."""
    limit = f"\n    timeout: {timeout}" if timeout else ""
    return f"""
runbook: start
steps:
  - id: start
    run: setsid sleep {marker} & echo $$ > pid; echo started; sleep 600{limit}
    rollback: [{{run: echo undone >> trail}}]
"""


def test_a_timeout_ends_a_step_whose_daemon_holds_its_stdout(workdir: Path, daemon: str) -> None:
    write_runbook(workdir, "start", daemonising(daemon, timeout="1s"))
    began = time.monotonic()
    proc = spawn(workdir, "run", "start")
    try:
        code = proc.wait(timeout=15)
    finally:
        proc.kill()
        proc.wait()
    took = time.monotonic() - began
    assert code == 1
    # 1 s timeout, then the shell dies at SIGTERM, then at most the 2 s grace for the pipes
    assert took < 6, f"the step took {took:.1f}s: it waited for the daemon's pipe"
    assert running(daemon), "the daemon left the group: not the step's to kill"
    [finished] = named(run_events(workdir / "state"), "step.finished")
    assert finished["timed_out"] is True and finished["duration"] < 5
    assert finished["stdout"]["head"] == "started\n"
    assert finished["stdout"]["cut"] is True  # the daemon still held it: more may have come
    assert (workdir / "trail").read_text() == "undone\n"


def test_a_first_ctrl_c_ends_a_step_whose_daemon_holds_its_stdout(
    workdir: Path, daemon: str
) -> None:
    write_runbook(workdir, "start", daemonising(daemon))
    proc = spawn(workdir, "run", "start")
    try:
        shell = wait_for_file(workdir / "pid")
        proc.send_signal(signal.SIGINT)
        stopped = time.monotonic()
        code = proc.wait(timeout=15)
    finally:
        proc.kill()
        proc.wait()
    took = time.monotonic() - stopped
    assert code == 130 and not alive(shell)
    assert took < 5, f"the run took {took:.1f}s after Ctrl-C: it waited for the daemon's pipe"
    recs = run_events(workdir / "state")
    [interrupt] = named(recs, "interrupt")
    assert interrupt["first"] is True
    [finished] = named(recs, "step.finished")
    assert finished["interrupted"] == "SIGINT" and finished["stdout"]["cut"] is True
    assert (workdir / "trail").read_text() == "undone\n"


def test_without_a_timeout_a_backgrounded_process_holding_stdout_is_waited_for(
    workdir: Path,
) -> None:
    """As `$(…)` would, and as over SSH: its output is the step's (documented)."""
    write_runbook(
        workdir,
        "bg",
        "runbook: bg\nsteps:\n  - id: bg\n    run: (sleep 1; echo late) & echo early\n",
    )
    proc = spawn(workdir, "run", "bg")
    assert proc.wait(timeout=15) == 0
    [finished] = named(run_events(workdir / "state"), "step.finished")
    assert finished["stdout"]["head"] == "early\nlate\n" and "cut" not in finished["stdout"]


def test_the_step_dies_with_the_runner(workdir: Path) -> None:
    marker = f"30.{os.getpid()}1"
    write_runbook(
        workdir,
        "migrate",
        f"runbook: migrate\nsteps:\n  - id: migrate\n"
        f"    run: sleep {marker} & echo $! > pid; wait\n",
    )
    proc = spawn(workdir, "run", "migrate")
    try:
        sleep = wait_for_file(workdir / "pid")
        proc.send_signal(signal.SIGKILL)  # the OOM killer: nothing of ours runs after it
        proc.wait()
        assert dies_within(sleep, 2), "the step's command runs on without its runner"
    finally:
        for pid in running(marker):
            os.kill(pid, signal.SIGKILL)


def test_a_step_s_background_process_outlives_a_runner_that_ends_normally(
    workdir: Path, daemon: str
) -> None:
    """What a finished step left running (`nohup daemon &`) is the step's effect, not a
    survivor: only the groups of steps still running when the runner dies are killed."""
    write_runbook(
        workdir,
        "bg",
        f"runbook: bg\nsteps:\n  - id: bg\n    run: sleep {daemon} >/dev/null 2>&1 &\n",
    )
    proc = spawn(workdir, "run", "bg")
    assert proc.wait(timeout=15) == 0
    time.sleep(0.3)
    assert running(daemon)


def watcher_of(shell: int) -> int:
    """The watcher whose table holds the group of `shell` (a step's shell, its group's leader)."""
    for fd3 in Path("/proc").glob("[0-9]*/fd/3"):
        try:
            if f"{shell:7d}\n".encode() in fd3.read_bytes():
                return int(fd3.parent.parent.name)
        except OSError:
            continue
    raise AssertionError(f"no watcher holds the group of {shell}")


def test_a_killed_watcher_is_replaced_and_a_command_ignoring_sigterm_still_dies(
    workdir: Path,
) -> None:
    marker = f"30.{os.getpid()}2"
    write_runbook(
        workdir,
        "two",
        f"""
runbook: two
steps:
  - id: first
    run: echo $$ > first; while [ ! -e go ]; do sleep 0.05; done
  - id: second
    run: trap '' TERM; sleep {marker} & echo $! > pid; wait
""",
    )
    proc = spawn(workdir, "run", "two")
    try:
        watcher = watcher_of(wait_for_file(workdir / "first"))
        os.kill(watcher, signal.SIGKILL)  # a person, or the OOM killer
        (workdir / "go").touch()
        sleep = wait_for_file(workdir / "pid")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # SIGTERM ignored: SIGKILL after the 2 s grace
        assert dies_within(sleep, 5), "the step's command runs on without its runner"
    finally:
        proc.kill()
        proc.wait()
        for pid in running(marker):
            os.kill(pid, signal.SIGKILL)
