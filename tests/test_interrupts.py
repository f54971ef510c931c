"""Ctrl-C and SIGTERM (issue 8): the first stops the running step and applies the failure policy,
asking first at a terminal; the second exits at once and leaves a resumable run.

The runner runs as a real process: at a real pseudo-terminal where the test answers its questions,
or with no terminal at all. Signals are sent to it as a terminal or a supervisor would.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import alive, run_events, running, write_runbook
from sshd_fixture import SSHServer

from runner.cli import main


def named(recs: list[dict], event: str) -> list[dict]:
    return [r for r in recs if r["event"] == event]


def wait_for_file(path: Path, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def dies_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(pid)


def spawn(workdir: Path, *args: str) -> subprocess.Popen[bytes]:
    """`runbook ARGS` with no terminal at all, as a supervisor or a CI job runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class Terminal:
    """`runbook ARGS` at a pseudo-terminal: it sees a TTY on stdin and stdout, as at a desk."""

    def __init__(self, cwd: Path, *args: str) -> None:
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runner", *args],
            cwd=cwd,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**os.environ, "NO_COLOR": "1", "TERM": "dumb"},
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.seen = ""

    def _read(self, wait: float) -> None:
        ready, _, _ = select.select([self.master], [], [], wait)
        if ready:
            try:
                self.seen += os.read(self.master, 65536).decode(errors="replace")
            except OSError:  # EIO: the process closed the terminal
                time.sleep(wait)

    def expect(self, text: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            if time.monotonic() > deadline:
                raise AssertionError(f"never printed {text!r}; printed:\n{self.seen}")
            self._read(0.05)

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.05)  # keep draining, or a full terminal buffer would block it
        os.close(self.master)
        return self.proc.wait(timeout=1)


# `wait` sleeps until the file `go` exists, so the same runbook can be resumed to the end.
LONG = """
runbook: long
steps:
  - id: prep
    run: echo prep >> trail
    rollback: [{run: echo undo-prep >> trail}]
  - id: wait
    run: |
      if [ -e go ]; then echo wait >> trail; else echo $$ > pid; sleep 60; fi
    rollback: [{run: echo undo-wait >> trail}]
  - id: after
    run: echo after >> trail
"""


def at_the_rollback_question(workdir: Path) -> Terminal:
    """`runbook run long` at a terminal, Ctrl-C'd during `wait`, now asking whether to roll back."""
    write_runbook(workdir, "long", LONG)
    term = Terminal(workdir, "run", "long")
    wait_for_file(workdir / "pid")
    term.proc.send_signal(signal.SIGINT)
    term.expect("Roll back what this run did")
    term.expect("[Y/n]")
    return term


def test_first_ctrl_c_kills_the_step_then_asks_and_rolls_back(workdir: Path) -> None:
    write_runbook(workdir, "long", LONG)
    term = Terminal(workdir, "run", "long")
    child = wait_for_file(workdir / "pid")
    term.proc.send_signal(signal.SIGINT)
    assert dies_within(child, 2), "the step's process outlived Ctrl-C by 2 s"
    term.expect("Roll back what this run did")
    term.send("y\n")
    assert term.wait() == 130
    # the interrupted step had started, so it is undone too, then prep, in reverse order
    assert (workdir / "trail").read_text().split() == ["prep", "undo-wait", "undo-prep"]
    recs = run_events(workdir / "state")
    [stopped] = [r for r in named(recs, "step.finished") if r["step"] == "wait"]
    assert stopped["interrupted"] == "SIGINT" and stopped["exit"] is None and not stopped["ok"]
    [answer] = named(recs, "confirm")
    assert answer["answer"] is True and answer["via"] == "terminal"
    assert recs[-1]["outcome"] == "interrupted" and recs[-1]["exit_code"] == 130
    assert not [r for r in named(recs, "step.started") if r["step"] == "after"]
    assert main(["audit", "verify"]) == 0


def test_answering_no_leaves_the_run_as_it_is_and_resume_finishes_it(
    workdir: Path, no_tty: None
) -> None:
    term = at_the_rollback_question(workdir)
    term.send("n\n")
    assert term.wait() == 130
    assert (workdir / "trail").read_text().split() == ["prep"]
    recs = run_events(workdir / "state")
    [skipped] = named(recs, "rollback.skipped")
    assert "declined after the interrupt" in skipped["reason"]
    (workdir / "go").touch()
    assert main(["resume", recs[0]["run_id"]]) == 0
    # prep is not run again; the interrupted step is, then the rest
    assert (workdir / "trail").read_text().split() == ["prep", "wait", "after"]


def test_ctrl_c_at_a_question_is_handled_at_once(workdir: Path) -> None:
    write_runbook(
        workdir,
        "ask",
        """
runbook: ask
steps:
  - id: prep
    run: echo prep >> trail
    rollback: [{run: echo undo-prep >> trail}]
  - id: gate
    confirm: Really go on?
    run: echo gate >> trail
""",
    )
    term = Terminal(workdir, "run", "ask")
    term.expect("Really go on?")
    term.proc.send_signal(signal.SIGINT)
    term.expect("Roll back what this run did")  # the prompt did not swallow the Ctrl-C
    term.send("\n")  # the default is what the failure policy says: roll back
    assert term.wait() == 130
    assert (workdir / "trail").read_text().split() == ["prep", "undo-prep"]
    [gate] = [
        r for r in named(run_events(workdir / "state"), "step.outcome") if r["step"] == "gate"
    ]
    assert gate["status"] == "failed" and "interrupted (SIGINT)" in gate["reason"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_without_a_terminal_the_failure_policy_applies(workdir: Path, sig: signal.Signals) -> None:
    write_runbook(workdir, "long", LONG)
    proc = spawn(workdir, "run", "long")
    child = wait_for_file(workdir / "pid")
    proc.send_signal(sig)
    assert dies_within(child, 2), f"the step's process outlived {sig.name} by 2 s"
    assert proc.wait(timeout=20) == 130
    assert (workdir / "trail").read_text().split() == ["prep", "undo-wait", "undo-prep"]
    recs = run_events(workdir / "state")
    [interrupt] = named(recs, "interrupt")
    assert interrupt["signal"] == sig.name and interrupt["first"] is True
    [answer] = named(recs, "confirm")
    assert answer["via"] == "no terminal: the failure policy applies"
    assert recs[-1]["outcome"] == "interrupted"
    assert main(["audit", "verify"]) == 0


def test_second_ctrl_c_in_the_rollback_exits_at_once_and_resume_continues_the_rollback(
    workdir: Path, no_tty: None, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(
        workdir,
        "slow-undo",
        """
runbook: slow-undo
steps:
  - id: prep
    run: echo prep >> trail
    rollback:
      # ignores SIGTERM: only the second Ctrl-C's immediate SIGKILL ends it quickly
      - run: |
          if [ -e go ]; then echo undo-prep >> trail; else trap '' TERM; echo $$ > rbpid; sleep 60; fi
  - id: wait
    run: |
      if [ -e go ]; then echo wait >> trail; else echo $$ > pid; sleep 60; fi
""",
    )
    proc = spawn(workdir, "run", "slow-undo")
    wait_for_file(workdir / "pid")
    proc.send_signal(signal.SIGINT)  # stop `wait`; the policy rolls back: prep's slow undo
    undo = wait_for_file(workdir / "rbpid")
    second = time.monotonic()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 130
    # no SIGTERM grace the second time (KILL_GRACE is 2 s), though the undo ignores SIGTERM
    assert dies_within(undo, max(0.0, 1.9 - (time.monotonic() - second)))
    recs = run_events(workdir / "state")
    assert [r["first"] for r in named(recs, "interrupt")] == [True, False]
    assert recs[-1]["event"] == "run.finished" and recs[-1]["outcome"] == "interrupted"
    assert main(["audit", "verify"]) == 0
    run_id = recs[0]["run_id"]
    capsys.readouterr()
    # the run stopped inside its rollback: resume goes on with the rollback, never the steps;
    # prep's undo was cut short (it may have changed the system): named, and refused without a
    # terminal until --rerun-unknown (docs/resilience.md, "Outcome unknown")
    (workdir / "go").touch()
    assert main(["resume", run_id]) == 2
    assert "outcome unknown for prep on local" in capsys.readouterr().err
    assert (workdir / "trail").read_text().split() == ["prep"]
    assert main(["resume", run_id, "--rerun-unknown"]) == 1  # interrupted, and rolled back
    assert (workdir / "trail").read_text().split() == ["prep", "undo-prep"]
    assert "■ rolled-back (exit 1)" in capsys.readouterr().out
    assert main(["resume", run_id]) == 2  # nothing left to resume


@pytest.mark.ssh
def test_ctrl_c_kills_the_remote_commands_and_rolls_back_every_host(
    workdir: Path, sshd: SSHServer
) -> None:
    import yaml

    inv = sshd.write_inventory(workdir / "inv.yaml", hosts=3)
    data = yaml.safe_load(inv.read_text())
    data["groups"] = {"fleet": list(data["hosts"])}
    inv.write_text(yaml.safe_dump(data))
    out = workdir / "out"
    out.mkdir()
    write_runbook(
        workdir,
        "fleet",
        f"""
runbook: fleet
targets: [fleet]
steps:
  - id: change
    run: echo changed > {out}/{{{{ host }}}}.changed
    rollback:
      - run: echo undone > {out}/{{{{ host }}}}.undone
  - id: wait
    run: "echo $$ > {out}/{{{{ host }}}}.pid; sleep 60"
""",
    )
    proc = spawn(workdir, "run", "fleet", "-i", str(inv))
    # every host is this machine over loopback SSH, so the remote pids are local ones
    remote = [wait_for_file(out / f"h{i}.pid") for i in (1, 2, 3)]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert not [pid for pid in remote if alive(pid)], "a remote command outlived the Ctrl-C"
    assert sorted(p.name for p in out.glob("*.undone")) == ["h1.undone", "h2.undone", "h3.undone"]
    recs = run_events(workdir / "state")
    stopped = [r for r in named(recs, "step.finished") if r["step"] == "wait"]
    assert sorted(r["host"] for r in stopped if r["interrupted"] == "SIGINT") == ["h1", "h2", "h3"]


@pytest.mark.ssh
def test_a_second_ctrl_c_kills_a_remote_command_that_ignores_sigterm_at_once(
    workdir: Path, sshd: SSHServer
) -> None:
    inv = sshd.write_inventory(workdir / "inv.yaml", hosts=1)
    write_runbook(
        workdir,
        "stubborn",
        f"""
runbook: stubborn
targets: [h1]
steps:
  - id: wait
    run: "trap '' TERM; echo $$ > {workdir}/pid; sleep 60"
""",
    )
    proc = spawn(workdir, "run", "stubborn", "-i", str(inv))
    remote = wait_for_file(workdir / "pid")
    proc.send_signal(signal.SIGINT)  # TERM to the remote group: ignored, KILL due in 2 s
    time.sleep(0.3)
    second = time.monotonic()
    proc.send_signal(signal.SIGINT)  # no more grace: KILL now
    assert proc.wait(timeout=20) == 130
    # the runner waits for the remote kill before it exits, and that came before the grace ended
    assert time.monotonic() - second < 1.7 and not alive(remote)
    assert [r["first"] for r in named(run_events(workdir / "state"), "interrupt")] == [True, False]


def test_ctrl_c_while_a_host_is_slow_to_answer_does_not_wait_for_the_connect_timeout(
    workdir: Path,
) -> None:
    with socket.socket() as silent:  # the kernel accepts the TCP connection; no banner ever comes
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        (workdir / "inv.yaml").write_text(
            "ssh: {connect_timeout: 60s}\n"
            f"hosts: {{mute: {{address: 127.0.0.1, port: {silent.getsockname()[1]}}}}}\n"
        )
        write_runbook(
            workdir,
            "mute",
            """
runbook: mute
targets: [mute]
steps:
  - {id: first, run: "true"}
""",
        )
        proc = spawn(workdir, "run", "mute", "-i", "inv.yaml")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(
            b"batch.started" in log.read_bytes()
            for log in (workdir / "state" / "runs").glob("*.jsonl")
        ):
            time.sleep(0.02)
        time.sleep(0.3)  # connecting now: a banner never comes
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        assert time.monotonic() - sent < 10  # not the 60 s connect timeout
    [outcome] = named(run_events(workdir / "state"), "step.outcome")
    assert outcome["reason"] == "interrupted (SIGINT) while connecting"


def test_a_second_ctrl_c_at_the_rollback_question_exits_without_rolling_back(
    workdir: Path,
) -> None:
    term = at_the_rollback_question(workdir)
    term.proc.send_signal(signal.SIGINT)
    assert term.wait() == 130
    assert (workdir / "trail").read_text().split() == ["prep"]  # nothing undone: resumable
    recs = run_events(workdir / "state")
    assert [r["first"] for r in named(recs, "interrupt")] == [True, False]
    assert not named(recs, "rollback.begin") and recs[-1]["outcome"] == "interrupted"


def test_a_command_cancelled_while_starting_dies_with_its_children(tmp_path: Path) -> None:
    """asyncio, cancelled while it connects a new process's pipes, kills the shell alone and
    then waits for the pipes, which the shell's children still hold: a hang and a survivor."""
    import asyncio

    from runner.execution.executors.base import CommandRequest
    from runner.execution.executors.local import LocalExecutor

    marker = "61.23456"  # a sleep no other process on the machine runs

    async def go() -> None:
        ex = LocalExecutor()
        command = f"sleep {marker} & sleep {marker}"
        task = asyncio.ensure_future(ex.run(CommandRequest(command), lambda s, b: None))
        await asyncio.sleep(0)  # the shell is forked; asyncio is still connecting its pipes
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)

    start = time.monotonic()
    asyncio.run(go())
    assert time.monotonic() - start < 10
    deadline = time.monotonic() + 2
    while running(marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running(marker) == []
