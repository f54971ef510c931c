"""Group commit (issue 15): one sync per command; what a crash between a command and the next
sync leaves is a step whose outcome is unknown, never one recorded as finished."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import alive, write_runbook

from runner.cli import main

RUNBOOK = """
runbook: gc
steps:
  - {id: first, run: echo first >> trail}
  - id: flaky
    run: echo flaky >> trail; touch ran; test -f fixed
    retries: 1
    delay: 120
"""


def children(pid: int) -> list[str]:
    out: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += (task / "children").read_text().split()
    return out


def durable_records(workdir: Path) -> list[dict]:
    (log,) = (workdir / "state" / "runs").glob("*.jsonl")
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_sigkill_after_a_command_before_the_next_sync_leaves_its_outcome_unknown(
    workdir: Path, no_tty: None, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "gc", RUNBOOK)
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", "gc", "--quiet"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # the first attempt of `flaky` ran and failed; the runner now waits out `delay` before
        # the retry: its result is recorded, but no command has needed it to be durable yet
        deadline = time.monotonic() + 60
        while not ((workdir / "ran").exists() and not children(proc.pid)):
            assert time.monotonic() < deadline and alive(proc.pid), "the first attempt never ended"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    records = durable_records(workdir)
    events = [(r["event"], r.get("step")) for r in records]
    assert ("step.started", "flaky") in events  # durable before the command ran
    assert ("step.finished", "flaky") not in events  # lost with the process: never synced
    assert ("step.finished", "first") in events  # made durable before flaky's command
    run_id = records[0]["run_id"]

    assert main(["resume", run_id]) == 2  # no terminal: refuses to guess
    assert "outcome unknown for flaky on local" in capsys.readouterr().err
    (workdir / "fixed").touch()
    assert main(["resume", run_id, "--rerun-unknown"]) == 0
    assert (workdir / "trail").read_text().split() == ["first", "flaky", "flaky"]
    assert main(["audit", "verify"]) == 0


def test_each_command_costs_one_sync_not_one_per_record(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted, not timed: 3 records a step, 1 sync a step. A run's own syncs (its start, the
    ledger's entries, its end) cancel out between a 1-step and a 21-step run."""
    import os

    calls: list[int] = []
    for name in ("fsync", "fdatasync"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda fd, real=real: (calls.append(fd), real(fd))[1])

    def syncs(steps: int) -> int:
        body = "".join(f"  - {{id: s{i}, run: 'true'}}\n" for i in range(steps))
        write_runbook(workdir, f"n{steps}", f"runbook: n{steps}\nsteps:\n" + body)
        calls.clear()
        assert main(["run", f"n{steps}", "--quiet"]) == 0
        return len(calls)

    syncs(1)  # the state dir's directories are created (and synced) once
    one, twenty_one = syncs(1), syncs(21)
    assert twenty_one - one == 20  # before group commit: 60 (three records a step)


REFUSED = """
import resource, sys
from pathlib import Path
from runner.audit.groupcommit import GroupCommitJournal
from runner.errors import StateError
log = Path(sys.argv[1])
journal = GroupCommitJournal(log, "r1")
journal.append("run.started", {"n": 1})
journal.sync()
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
# the disk takes 50 more bytes, then refuses (Python ignores SIGXFSZ: the write comes back short)
resource.setrlimit(resource.RLIMIT_FSIZE, (log.stat().st_size + 50, hard))
journal.append("step.started", {"pad": "x" * 500})
try:
    journal.sync()
except StateError as exc:
    print("refused:", exc)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # room again
journal.append("run.finished", {"n": 2})
journal.sync()
"""


def test_a_write_the_disk_refuses_leaves_no_part_of_a_record(tmp_path: Path) -> None:
    """A short write (disk full, a file size limit) is cut off again: what is written once there
    is room chains onto the last whole record, and the log verifies."""
    from runner.audit.chain import verify_run

    log = tmp_path / "r1.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", REFUSED, str(log)], capture_output=True, text=True, check=True
    )
    assert "refused: cannot write the audit log" in done.stdout, done.stdout + done.stderr
    verdict = verify_run(log, keep=True)
    assert verdict.status == "ok", verdict.line()
    assert [e["event"] for e in verdict.events] == ["run.started", "run.finished"]
