"""`checklist run`: the runs it starts are signed like its other records, its exit code is the
most serious of its items', and each item's record says when that item ran."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_runbook

from runner.checklists import definition as cl
from runner.checklists import state as cs
from runner.cli import main
from runner.commands import checklist as cmd
from runner.commands.checklist_run import run_items

DAY = "2026-11-24"


def write_checklist(root: Path, name: str, text: str) -> None:
    (root / "checklists").mkdir(exist_ok=True)
    (root / "checklists" / f"{name}.yaml").write_text(text)


def ran(state: Path, checklist: str) -> list[dict]:
    path = cs.journal_path(state, checklist, DAY)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in rows if r["event"] == "item.ran"]


def test_a_signed_checklist_run_signs_the_runs_of_its_runbook_items(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: the runbook item's run ended unsigned, and `audit verify --public-key` exit 4."""
    write_runbook(workdir, "okrb", "runbook: okrb\nsteps:\n  - {id: s, run: 'true'}\n")
    write_checklist(
        workdir,
        "sig",
        "checklist: sig\nperiod: daily\nitems:\n"
        "  - {id: viarb, title: Via runbook, runbook: okrb}\n"
        "  - {id: viacheck, title: Via check, check: {run: 'true'}}\n",
    )
    key = workdir / "k"
    assert main(["audit", "keygen", "--out", str(key)]) == 0
    signed = ["--signing-key", str(key), "checklist"]
    assert main([*signed, "start", "sig", "--period", DAY]) == 0
    assert main([*signed, "run", "sig", "--period", DAY, "--quiet", "--by", "alice"]) == 0
    logs = list((workdir / "state" / "runs").glob("*.jsonl"))
    assert len(logs) == 2
    # both runs name the performer, as item.ran does (the check's run named the OS user)
    for log in logs:
        assert json.loads(log.read_text().splitlines()[0])["operator"] == "alice"
    capsys.readouterr()
    code = main(["audit", "verify", "--public-key", f"{key}.pub"])
    assert code == 0, capsys.readouterr().out


ROLLBACK_FAILS = """
runbook: badrb
steps:
  - id: first
    run: "true"
    rollback:
      - run: "false"
  - id: second
    run: "false"
"""


def test_a_rollback_that_failed_makes_the_checklist_run_exit_3(workdir: Path) -> None:
    """SPEC §5: 3 = a person must act. It outranks an item that merely failed (1), in either
    order; was exit 1."""
    write_runbook(workdir, "badrb", ROLLBACK_FAILS)
    write_runbook(workdir, "failsclean", "runbook: failsclean\nsteps:\n  - {id: x, run: 'false'}\n")
    write_checklist(
        workdir,
        "rbf",
        "checklist: rbf\nperiod: daily\nitems:\n"
        "  - {id: before, title: A failing check, check: {run: 'false'}}\n"
        "  - {id: viarb, title: Rollback fails, runbook: badrb}\n"
        "  - {id: after, title: Fails and rolls back, runbook: failsclean}\n",
    )
    assert main(["checklist", "start", "rbf", "--period", DAY]) == 0
    assert main(["checklist", "run", "rbf", "--period", DAY, "--quiet"]) == 3
    by_item = {r["item"]: r for r in ran(workdir / "state", "rbf")}
    assert by_item["viarb"]["evidence"]["exit_code"] == 3
    assert by_item["viarb"]["evidence"]["outcome"] == "rollback-failed"
    assert by_item["after"]["evidence"]["exit_code"] == 1
    # the clean failures alone are 1
    assert main(["checklist", "run", "rbf", "before", "after", "--period", DAY, "--quiet"]) == 1


def test_each_item_records_when_it_ran(workdir: Path) -> None:
    """Was: every item.ran of one command carried the command's start time."""
    write_checklist(
        workdir,
        "slow",
        "checklist: slow\nperiod: daily\nitems:\n"
        "  - {id: one, title: One, check: {run: 'sleep 0.3'}}\n"
        "  - {id: two, title: Two, check: {run: 'sleep 0.3'}}\n",
    )
    assert main(["checklist", "start", "slow", "--period", DAY]) == 0
    assert main(["checklist", "run", "slow", "--period", DAY, "--quiet"]) == 0
    one, two = (r["at"] for r in ran(workdir / "state", "slow"))
    assert one.endswith("Z") and two.endswith("Z")
    assert one < two


def test_an_injected_clock_still_chooses_the_instance_and_times_from_there(workdir: Path) -> None:
    """`now` is the seam for tests at period boundaries: the times recorded go on from it."""
    write_checklist(
        workdir,
        "wk",
        "checklist: wk\nperiod: weekly\nitems: [{id: a, title: A, check: {run: 'true'}}]\n",
    )
    c = cl.load("wk")
    now = dt.datetime(2027, 1, 3, 23, 59, 59, tzinfo=dt.timezone.utc)
    instance = cl.current_period(c.period, now)
    assert instance == "2026-W53"
    state = workdir / "state"
    assert cmd.start(c, instance, state, by="x", now=now) == 0
    code = run_items(
        c, instance, state, [], inventory=None, by="x", quiet=True, clock=cl.ticking(now)
    )
    assert code == 0
    path = cs.journal_path(state, "wk", instance)
    (rec,) = [json.loads(x) for x in path.read_text().splitlines() if '"item.ran"' in x]
    at = dt.datetime.strptime(rec["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    assert now < at < now + dt.timedelta(seconds=30)  # the check's own run took a moment


def test_a_run_waiting_for_a_person_outranks_a_failed_check(workdir: Path, no_tty: None) -> None:
    """A runbook item stopped at a manual step (no terminal) is 5, as its run is, not 1."""
    write_runbook(workdir, "ask", "runbook: ask\nsteps:\n  - {id: a, manual: Approve it.}\n")
    write_checklist(
        workdir,
        "w",
        "checklist: w\nperiod: daily\nitems:\n"
        "  - {id: ask, title: Waits, runbook: ask}\n"
        "  - {id: nope, title: A failing check, check: {run: 'false'}}\n",
    )
    assert main(["checklist", "start", "w", "--period", DAY]) == 0
    assert main(["checklist", "run", "w", "--period", DAY, "--quiet"]) == 5
    assert [r["ok"] for r in ran(workdir / "state", "w")] == [False, False]


def test_ctrl_c_stops_the_checklist_run_not_only_its_item(workdir: Path) -> None:
    """Was: the interrupted item's run ended (130), and the next item's runbook started."""
    write_runbook(
        workdir, "stop", "runbook: stop\nsteps:\n  - {id: s, run: 'kill -INT $PPID; sleep 5'}\n"
    )
    write_runbook(workdir, "next", "runbook: next\nsteps:\n  - {id: s, run: 'touch second'}\n")
    write_checklist(
        workdir,
        "two",
        "checklist: two\nperiod: daily\nitems:\n"
        "  - {id: first, title: First, runbook: stop}\n"
        "  - {id: second, title: Second, runbook: next}\n",
    )
    assert main(["checklist", "start", "two", "--period", DAY]) == 0
    done = subprocess.run(
        [sys.executable, "-m", "runner", "checklist", "run", "two", "--period", DAY, "--quiet"],
        cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 130, done.stderr
    assert not (workdir / "second").exists()
    assert [r["item"] for r in ran(workdir / "state", "two")] == ["first"]
    assert b"interrupted" in done.stderr
