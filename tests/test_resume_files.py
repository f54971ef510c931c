"""resume and rollback rebuild a run from its log: they must execute the runbooks the run
started with, called ones too, and for a run of a reviewed plan nothing else at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_events, write_runbook

from runner.cli import main

TOP = """
runbook: top
on_failure: halt
steps:
  - id: gate
    run: test -f flag
  - id: sub
    call: inner
"""
INNER = """
runbook: inner
steps:
  - id: write
    run: echo as-reviewed >> out
    rollback:
      - run: echo undone-as-reviewed >> out
"""


@pytest.fixture
def runbooks(workdir: Path) -> None:
    """`top` halts at its gate (no flag) before it calls `inner`: a run to resume."""
    write_runbook(workdir, "top", TOP)
    write_runbook(workdir, "inner", INNER)


def _run_id(workdir: Path) -> str:
    (log,) = (workdir / "state" / "runs").glob("*.jsonl")
    return log.stem


def _edit(workdir: Path, name: str, old: str, new: str) -> None:
    path = workdir / "runbooks" / f"{name}.yaml"
    path.write_text(path.read_text().replace(old, new))


def _planned_run(workdir: Path) -> str:
    plan = workdir / "plan.json"
    assert main(["plan", "top", "-o", str(plan)]) == 0
    assert main(["run", "--plan", str(plan)]) == 1  # the gate fails: halted
    return _run_id(workdir)


def test_the_run_records_every_runbook_file_it_uses(workdir: Path, runbooks: None) -> None:
    plan = workdir / "plan.json"
    assert main(["plan", "top", "-o", str(plan)]) == 0
    assert main(["run", "--plan", str(plan)]) == 1
    started = run_events(workdir / "state")[0]
    assert started["files"] == json.loads(plan.read_text())["files"]
    assert set(started["files"]) == {"runbooks/top.yaml", "runbooks/inner.yaml"}


def test_resuming_a_plan_run_refuses_an_edited_called_runbook(
    workdir: Path, runbooks: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: resume compared the top-level runbook alone and ran the edited called one."""
    run_id = _planned_run(workdir)
    _edit(workdir, "inner", "as-reviewed", "EDITED")
    (workdir / "flag").touch()
    capsys.readouterr()
    assert main(["resume", run_id]) == 2
    err = capsys.readouterr().err
    assert "runbook file(s) runbooks/inner.yaml changed since run" in err and "new plan" in err
    assert not (workdir / "out").exists()
    _edit(workdir, "inner", "EDITED", "as-reviewed")  # back as reviewed: it resumes
    assert main(["resume", run_id]) == 0
    assert (workdir / "out").read_text() == "as-reviewed\n"


def test_a_plan_run_refuses_accept_changed_runbook(
    workdir: Path, runbooks: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: --accept-changed-runbook let a top-level edit through for a run of a reviewed plan."""
    run_id = _planned_run(workdir)
    _edit(workdir, "top", "call: inner", "run: echo EDITED >> out")
    (workdir / "flag").touch()
    capsys.readouterr()
    assert main(["resume", run_id, "--accept-changed-runbook"]) == 2
    err = capsys.readouterr().err
    assert "runbooks/top.yaml changed since run" in err
    assert "make and review a new plan" in err
    assert not (workdir / "out").exists()


def test_rolling_back_a_plan_run_refuses_an_edited_called_runbook(
    workdir: Path, runbooks: None, capsys: pytest.CaptureFixture[str]
) -> None:
    gate_last = "runbook: top\non_failure: halt\nsteps:\n  - {id: sub, call: inner}\n"
    write_runbook(workdir, "top", gate_last + "  - {id: gate, run: test -f flag}\n")
    run_id = _planned_run(workdir)  # inner ran, then the gate halted the run
    _edit(workdir, "inner", "undone-as-reviewed", "undone-EDITED")
    capsys.readouterr()
    assert main(["rollback", run_id, "--yes"]) == 2
    assert "runbook file(s) runbooks/inner.yaml changed since run" in capsys.readouterr().err
    assert (workdir / "out").read_text() == "as-reviewed\n"


def test_resuming_an_ordinary_run_refuses_an_edited_called_runbook_unless_accepted(
    workdir: Path, runbooks: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "top"]) == 1
    run_id = _run_id(workdir)
    _edit(workdir, "inner", "as-reviewed", "EDITED")
    (workdir / "flag").touch()
    capsys.readouterr()
    assert main(["resume", run_id]) == 2
    err = capsys.readouterr().err
    assert (
        "runbook file(s) runbooks/inner.yaml changed since run" in err
        and "--accept-changed-runbook" in err
    )
    assert not (workdir / "out").exists()
    assert main(["resume", run_id, "--accept-changed-runbook"]) == 0
    assert (workdir / "out").read_text() == "EDITED\n"
    resumed = next(e for e in run_events(workdir / "state") if e["event"] == "run.resumed")
    assert any("runbooks/inner.yaml" in n for n in resumed["notes"])


def test_a_log_from_before_files_were_recorded_resumes_as_before(
    workdir: Path, runbooks: None
) -> None:
    """No `files` in run.started (an older version's run): the top-level runbook is compared,
    as it was."""
    from runner.audit.journal import hashed_line

    assert main(["run", "top"]) == 1
    run_id = _run_id(workdir)
    log = workdir / "state" / "runs" / f"{run_id}.jsonl"
    records = [json.loads(x) for x in log.read_text().splitlines()]
    del records[0]["files"]
    prev = "0" * 64
    lines = []
    for r in records:  # re-chained as the older version wrote it
        r.pop("hash")
        r["prev"] = prev
        lines.append(hashed_line(r) + b"\n")
        prev = r["hash"]
    log.write_bytes(b"".join(lines))
    ledger = workdir / "state" / "ledger.jsonl"
    entries = [json.loads(x) for x in ledger.read_text().splitlines()]
    prev, lines_of_ledger = "0" * 64, []
    for e in entries:  # the ledger the older version kept names the hashes it wrote
        if e.get("run") == run_id:
            e["last_hash"] = records[e["records"] - 1]["hash"]
        e.pop("hash")
        e["prev"] = e["ledger_prev"] = prev
        lines_of_ledger.append(hashed_line(e) + b"\n")
        prev = e["hash"]
    ledger.write_bytes(b"".join(lines_of_ledger))
    (workdir / "flag").touch()
    assert main(["resume", run_id]) == 0
    assert (workdir / "out").read_text() == "as-reviewed\n"
