"""`checklist run`: the runs it starts are signed like its other records, its exit code is the
most serious of its items', and each item's record says when that item ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_runbook

from runner.checklists import state as cs
from runner.cli import main

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
