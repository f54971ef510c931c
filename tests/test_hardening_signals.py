"""Issue 18, item 4 (the runner's part): SIGHUP, the terminal going away, is an interrupt like
SIGTERM: the step is killed, the failure policy applies (no question: there is nobody to answer),
and it is all recorded. Before, SIGHUP killed the runner with nothing recorded, the step running on."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from conftest import run_events, write_runbook
from test_interrupts import LONG, Terminal, dies_within, named, spawn, wait_for_file

from runner.cli import main


def assert_hung_up_and_rolled_back(workdir: Path, child: int, code: int) -> None:
    assert dies_within(child, 5), "the step's process outlived SIGHUP"
    assert code == 130
    assert (workdir / "trail").read_text().split() == ["prep", "undo-wait", "undo-prep"]
    recs = run_events(workdir / "state")
    [interrupt] = named(recs, "interrupt")
    assert interrupt["signal"] == "SIGHUP" and interrupt["first"] is True
    [answer] = named(recs, "confirm")
    assert answer["via"] == "no terminal: the failure policy applies"
    assert recs[-1]["event"] == "run.finished" and recs[-1]["outcome"] == "interrupted"
    assert main(["audit", "verify"]) == 0


def test_sighup_without_a_terminal_applies_the_failure_policy(workdir: Path) -> None:
    write_runbook(workdir, "long", LONG)
    proc = spawn(workdir, "run", "long")
    child = wait_for_file(workdir / "pid")
    proc.send_signal(signal.SIGHUP)
    assert_hung_up_and_rolled_back(workdir, child, proc.wait(timeout=30))


def test_a_terminal_hanging_up_applies_the_failure_policy_without_asking(workdir: Path) -> None:
    write_runbook(workdir, "long", LONG)
    term = Terminal(workdir, "run", "long")
    child = wait_for_file(workdir / "pid")
    os.close(term.master)  # the terminal window is closed: the kernel sends SIGHUP
    term.proc.send_signal(signal.SIGHUP)  # (as the session leader's terminal would)
    assert_hung_up_and_rolled_back(workdir, child, term.proc.wait(timeout=30))
