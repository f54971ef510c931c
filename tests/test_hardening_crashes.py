"""Issue 18, crashes mid-run: whatever goes wrong inside a run goes through the failure policy and
ends with the exit code run.finished records, never a traceback (real processes, real files)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from conftest import run_events, write_runbook

from runner.cli import main

HEAD = """
runbook: bad
params: {v: {type: string, required: false, default: x}}
steps:
  - id: prep
    run: echo prep >> trail
    rollback: [{run: echo undo >> trail}]
"""


def runner(workdir: Path, *args: str, fsize: int | None = None) -> subprocess.CompletedProcess[str]:
    """`runbook ARGS` as a process (optionally with a file size limit: a full disk)."""
    limit = f"resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize}, {fsize}));" if fsize else ""
    code = (
        f"import resource, sys, runpy; {limit} sys.argv = ['runbook', *{list(args)!r}]; "
        "runpy.run_module('runner', run_name='__main__')"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=lambda: signal.signal(signal.SIGXFSZ, signal.SIG_IGN),
    )


def assert_policy_applied(workdir: Path, proc: subprocess.CompletedProcess[str]) -> dict:
    assert "Traceback" not in proc.stderr, proc.stderr
    finished = run_events(workdir / "state")[-1]
    assert finished["event"] == "run.finished", finished
    assert proc.returncode == finished["exit_code"] == 1, (proc.returncode, finished)
    assert finished["outcome"] == "rolled-back"
    assert (workdir / "trail").read_text().split() == ["prep", "undo"]
    return finished


def test_a_nul_in_a_value_fails_the_step_and_rolls_back(workdir: Path) -> None:
    write_runbook(workdir, "bad", HEAD + "  - {id: use, run: 'echo {{ v }}'}\n")
    (workdir / "p.json").write_text(json.dumps({"v": "a\u0000b"}))
    proc = runner(workdir, "run", "bad", "--params", "p.json")
    assert_policy_applied(workdir, proc)
    failed = [r for r in run_events(workdir / "state") if r["event"] == "step.finished"][-1]
    assert failed["step"] == "use" and "null" in failed["reason"]


def test_a_space_in_an_http_url_fails_the_step_and_rolls_back(workdir: Path) -> None:
    write_runbook(workdir, "bad", HEAD + "  - {id: get, http: {url: 'http://127.0.0.1:9/a b'}}\n")
    assert_policy_applied(workdir, runner(workdir, "run", "bad"))


def test_a_command_too_long_for_exec_fails_the_step_and_rolls_back(workdir: Path) -> None:
    long_word = "x" * 200_000  # over MAX_ARG_STRLEN (128 KiB): exec fails with E2BIG
    write_runbook(workdir, "bad", HEAD + f"  - {{id: big, run: 'echo {long_word}'}}\n")
    assert_policy_applied(workdir, runner(workdir, "run", "bad"))


def test_stdout_closed_by_the_reader_does_not_stop_the_run(workdir: Path) -> None:
    """`runbook run x | head -2`: the console loses its reader; the run goes on, recorded."""
    steps = "".join(f"  - {{id: s{i}, run: 'echo s{i} >> trail; seq 1 2000'}}\n" for i in range(8))
    write_runbook(workdir, "chatty", "runbook: chatty\nsteps:\n" + steps)
    with subprocess.Popen(
        [sys.executable, "-m", "runner", "run", "chatty"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()  # as `head -1` does
        err = proc.stderr.read()
        code = proc.wait(30)
    assert "Traceback" not in err, err
    finished = run_events(workdir / "state")[-1]
    assert finished["event"] == "run.finished" and finished["outcome"] == "succeeded", finished
    assert code == finished["exit_code"] == 0
    assert (workdir / "trail").read_text().split() == [f"s{i}" for i in range(8)]


def test_disk_full_mid_run_is_not_exit_2(workdir: Path) -> None:
    """Exit 2 means nothing was executed; commands ran, so a person must look: exit 3."""
    steps = "".join(
        f"  - {{id: s{i}, run: 'echo {i} >> trail; head -c 3000 /dev/zero | tr \"\\\\0\" x'}}\n"
        for i in range(1, 30)
    )
    write_runbook(workdir, "big", "runbook: big\nsteps:\n" + steps)
    proc = runner(workdir, "run", "big", "--quiet", fsize=20000)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 3, proc.stderr
    assert "cannot write the audit log" in proc.stderr


def test_disk_full_at_lock_time_is_a_clear_error(workdir: Path) -> None:
    write_runbook(workdir, "rb", "runbook: rb\nsteps: [{id: a, run: echo a >> trail}]\n")
    (workdir / "state").mkdir()
    proc = runner(workdir, "run", "rb", fsize=1)  # nothing of any size can be written
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2 and "runbook:" in proc.stderr
    assert not (workdir / "trail").exists()
    assert main(["audit", "verify"]) in (0, 4)


def test_a_checklist_check_too_long_for_exec_fails_the_item(workdir: Path) -> None:
    (workdir / "checklists").mkdir()
    (workdir / "checklists" / "big.yaml").write_text(
        "checklist: big\ntitle: Big\nperiod: daily\nitems:\n  - id: c\n    title: t\n"
        f"    check: {{run: 'echo {'x' * 200_000}'}}\n"
    )
    assert runner(workdir, "checklist", "start", "big", "--period", "2026-11-24").returncode == 0
    proc = runner(workdir, "checklist", "run", "big", "--period", "2026-11-24")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert (
        proc.returncode == 1 and "FAIL c" in proc.stdout and "Argument list too long" in proc.stdout
    )
