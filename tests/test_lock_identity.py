"""A run lock names its holder by more than a pid: pids are reused, after a reboot (the runner's
machine crashed mid-run, the case resume is for) and in time on a busy machine. A lock whose
holder's pid now belongs to another process is taken over like one whose process is gone; a lock
whose holder still runs is not. Real processes, real lock files."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import run_events, write_runbook

from runner.cli import main
from runner.execution.locks import lock_path


def leave_lock(workdir: Path, **holder: object) -> Path:
    path = lock_path(workdir / "state", "one", ["local"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = {"machine": socket.gethostname(), "user": "x", "run_id": "old", "since": "then"}
    path.write_text(json.dumps({**fields, **holder}))
    return path


def boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def start_ticks(pid: int) -> int:
    """When the process started, in clock ticks since boot (/proc/PID/stat, field 22)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


@pytest.fixture
def other_process() -> subprocess.Popen[bytes]:
    """A live process that is not the lock's holder (its pid is the holder's, reused)."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_lock_from_before_a_reboot_is_taken_over(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pid 1 is alive on every boot: the lock's holder ran on the boot before this one."""
    write_runbook(workdir, "one", "runbook: one\nsteps: [{id: a, run: 'true'}]\n")
    path = leave_lock(workdir, pid=1, boot="0c9a3c71-1111-4222-8333-444455556666", started=12345)
    assert main(["run", "one"]) == 0, capsys.readouterr().err
    (taken,) = [r for r in run_events(workdir / "state") if r["event"] == "lock.taken_over"]
    assert taken["previous"]["run_id"] == "old"
    assert "restarted" in taken["reason"]
    assert not path.exists()


def test_a_lock_whose_pid_now_runs_another_process_is_taken_over(
    workdir: Path, other_process: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "one", "runbook: one\nsteps: [{id: a, run: 'true'}]\n")
    pid = other_process.pid
    leave_lock(workdir, pid=pid, boot=boot_id(), started=start_ticks(pid) - 1)
    assert main(["run", "one"]) == 0, capsys.readouterr().err
    (taken,) = [r for r in run_events(workdir / "state") if r["event"] == "lock.taken_over"]
    assert taken["previous"]["pid"] == pid and "another process" in taken["reason"]


def test_a_lock_whose_holder_still_runs_is_kept(
    workdir: Path, other_process: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    """The same pid, boot and start time: the holder itself. Also a lock written before locks
    named their boot and start time (pid only): kept while that pid lives."""
    write_runbook(workdir, "one", "runbook: one\nsteps: [{id: a, run: 'true'}]\n")
    pid = other_process.pid
    for holder in ({"pid": pid, "boot": boot_id(), "started": start_ticks(pid)}, {"pid": pid}):
        path = leave_lock(workdir, **holder)
        assert main(["run", "one"]) == 2
        assert f"pid {pid}" in capsys.readouterr().err
        assert path.exists()


def test_a_run_names_its_boot_and_start_in_its_lock(workdir: Path) -> None:
    """What the checks above read is what a run writes (seen from inside a step)."""
    locks = workdir / "state" / "locks"
    write_runbook(
        workdir, "one", f"runbook: one\nsteps: [{{id: a, run: 'cat {locks}/one-*.lock'}}]\n"
    )
    assert main(["run", "one"]) == 0
    out = next(r for r in run_events(workdir / "state") if r["event"] == "step.finished")
    held = json.loads(out["stdout"]["head"])
    assert held["boot"] == boot_id() and held["started"] == start_ticks(held["pid"])
