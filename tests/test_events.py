"""Typed events (eventkinds.py): what reaches the journal is what each event declares, and the
steps of a called runbook are told apart by the `caller` their events name, not by their ids."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from conftest import run_events, write_runbook
from test_lifecycle import cli, run_id, trail

from runner.execution import eventkinds, stepevents
from runner.execution.eventkinds import Event, RunOpened
from runner.execution.stepevents import ActionFinished


def test_a_called_runbooks_steps_name_their_caller_and_resume_redoes_only_them(
    workdir: Path,
) -> None:
    write_runbook(
        workdir,
        "outer",
        """
runbook: outer
steps:
  - {id: before, run: echo before >> trail}
  - {id: inner, call: sub}
""",
    )
    write_runbook(
        workdir,
        "sub",
        """
runbook: sub
steps:
  - {id: a, run: echo a >> trail}
  - {id: approve, manual: Approve it.}
""",
    )
    assert cli(workdir, "run", "outer").returncode == 5  # waits at the called manual step
    events = run_events(workdir / "state")
    outcomes = {e["step"]: e.get("caller") for e in events if e["event"] == "step.outcome"}
    assert outcomes == {"before": None, "inner/a": "inner"}
    [waiting] = [e for e in events if e["event"] == "step.waiting"]
    assert (waiting["step"], waiting["caller"]) == ("inner/approve", "inner")
    # a resume goes on from the runbook's own step that did not finish: the call, again
    assert cli(workdir, "resume", run_id(workdir), "--rerun-unknown").returncode == 5
    assert trail(workdir) == ["before", "a", "a"]


def test_local_fields_never_reach_the_journal() -> None:
    """The console is told the run's id with run.started; the journal has its own."""
    opened = RunOpened("run.started", {"runbook": "one"}, run_id="r1")
    assert opened.fields()["run_id"] == "r1" and "run_id" not in opened.record()


def test_optional_fields_are_recorded_only_when_set() -> None:
    digest = {"bytes": 0, "sha256": "", "head": ""}
    plain = ActionFinished("h", "s", 1, "true", True, 0, 0.1, digest, digest)
    assert not {"status", "reason", "timed_out", "interrupted", "name", "scope", "caller"} & set(
        plain.record()
    )
    timed = dataclasses.replace(plain, ok=False, reason="timed out", timed_out=True)
    assert timed.record()["timed_out"] is True and timed.record()["reason"] == "timed out"


def test_every_event_kind_is_named_once() -> None:
    classes = {**vars(eventkinds), **vars(stepevents)}.values()
    kinds = [c.KIND for c in classes if isinstance(c, type) and issubclass(c, Event) and c.KIND]
    # step.started is two shapes of one record: an action's attempt, or a call
    assert sorted(k for k in set(kinds) if kinds.count(k) > 1) == ["step.started"]
