"""One execution path (issue 12): `plan --check` and checklist `check:` items run through the
engine and executors that `run` uses, and the engine executes the plan's rendered commands.
Through the real CLI in subprocesses, with real files and processes."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from conftest import alive, write_runbook
from sshd_fixture import SSHServer
from test_checklist import write_checklist
from test_lifecycle import cli, fleet

from runner.cli import main
from runner.commands.common import prepare
from runner.console import Console
from runner.execution.engine import Engine
from runner.execution.events import Bus
from runner.execution.executors.pool import Executors
from runner.execution.steps import Options
from runner.planning.planned import PlannedAction


def test_plan_check_exits_1_when_a_safe_step_fails(workdir: Path) -> None:
    """Was: exit 0 whenever no precondition failed, whatever the checks said."""
    write_runbook(
        workdir,
        "chk",
        """
runbook: chk
steps:
  - {id: look, run: "echo looking; exit 7", safe: true}
  - {id: change, run: touch changed}
""",
    )
    out = cli(workdir, "plan", "chk", "--check")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "look: FAILS: exit 7, expected 0" in out.stdout
    assert not (workdir / "changed").exists()


def test_plan_check_honours_retries_when_and_call(workdir: Path) -> None:
    """Was: checkmode.py ran each safe step once, ignoring retries, `when:` and `call:`."""
    write_runbook(
        workdir,
        "sub",
        """
runbook: sub
steps:
  - {id: peek, run: "echo peeked > peeked", safe: true}
  - {id: poke, run: touch poked}
""",
    )
    write_runbook(
        workdir,
        "chk",
        """
runbook: chk
params: {deep: {type: boolean, default: false}}
steps:
  - id: flaky
    run: "echo x >> tries; test $(wc -l < tries) -ge 3"
    retries: 2
    safe: true
  - {id: never, run: "touch never", safe: true, when: "deep"}
  - {id: inner, call: sub}
""",
    )
    out = cli(workdir, "plan", "chk", "--check")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "flaky: ok" in out.stdout
    assert (workdir / "tries").read_text().count("x") == 3
    assert "never: skipped (" in out.stdout and not (workdir / "never").exists()
    assert (workdir / "peeked").exists() and not (workdir / "poked").exists()


def test_plan_check_json_is_the_report_alone(workdir: Path) -> None:
    write_runbook(workdir, "chk", "runbook: chk\nsteps: [{id: a, run: 'true', safe: true}]\n")
    out = cli(workdir, "--json", "plan", "chk", "--check")
    assert out.returncode == 0
    assert json.loads(out.stdout) == [{"host": "local", "results": ["a: ok"], "would_abort": []}]


def test_a_checklist_check_that_times_out_kills_its_whole_process_group(workdir: Path) -> None:
    """Was: subprocess.run killed the shell alone on timeout; its children ran on, unrecorded."""
    write_checklist(
        workdir,
        "ops",
        """
checklist: ops
title: Ops
period: daily
items:
  - id: slow
    title: A check that hangs
    check: {run: "sleep 60 & echo $! > bg; wait", timeout: 1s}
""",
    )
    assert cli(workdir, "checklist", "start", "ops").returncode == 0
    out = cli(workdir, "checklist", "run", "ops")
    assert out.returncode == 1, out.stdout + out.stderr
    child = int((workdir / "bg").read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child), "the check's child outlived its timeout"
    # the check has an audit log of its own, like any run
    (log,) = (workdir / "state" / "runs").glob("*-check-slow-*.jsonl")
    events = [json.loads(x)["event"] for x in log.read_text().splitlines()]
    assert "step.started" in events and "step.finished" in events


def test_the_engine_executes_the_plans_rendered_command(workdir: Path) -> None:
    """The plan is what executes: the command comes from the plan, not a second rendering."""
    write_runbook(workdir, "p", "runbook: p\nsteps: [{id: a, run: 'echo from-runbook > out'}]\n")
    plan = prepare("p", [], None, None)
    [step] = plan.steps["local"]
    assert step.action is not None and step.action.text == "echo from-runbook > out"
    plan.steps["local"] = [
        type(step)(step.step, step.status, action=PlannedAction("run", "echo from-plan > out"))
    ]
    bus = Bus(plan.redactor, [Console(show_output=False)])
    executors = Executors(plan.inventory)

    async def go() -> int:
        try:
            return await Engine(plan, bus, executors, Console().ask, Options()).run()
        finally:
            await executors.close()

    assert asyncio.run(go()) == 0
    assert (workdir / "out").read_text() == "from-plan\n"


@pytest.mark.ssh
def test_plan_check_runs_safe_steps_on_the_remote_hosts(workdir: Path, sshd: SSHServer) -> None:
    """Was: plan --check went through its own loop; now the same SSH executors as run."""
    inv = fleet(workdir, sshd, 2)
    out_dir = workdir / "out"
    out_dir.mkdir()
    write_runbook(
        workdir,
        "remote",
        f"""
runbook: remote
targets: all
steps:
  - {{id: look, run: "echo seen > {out_dir}/{{{{ host }}}}.seen", safe: true}}
  - {{id: touch, run: "touch {out_dir}/{{{{ host }}}}.changed"}}
""",
    )
    assert main(["plan", "remote", "-i", str(inv), "--check"]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["h1.seen", "h2.seen"]
    (log,) = (workdir / "state" / "runs").glob("*.jsonl")
    ran = [json.loads(x) for x in log.read_text().splitlines()]
    assert {(e["host"], e["step"]) for e in ran if e["event"] == "step.finished"} == {
        ("h1", "look"),
        ("h2", "look"),
    }
