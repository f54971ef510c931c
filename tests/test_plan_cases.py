"""Expected plans: tests/cases/plans/<case>/{runbooks/,args,inventory.yaml} -> plan.txt."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from runner.cli import main

ROOT = Path(__file__).parent / "cases" / "plans"
CASES = sorted(p for p in ROOT.iterdir() if (p / "runbooks").is_dir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_expected_plan(case: Path, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(workdir / "runbooks")
    shutil.copytree(case / "runbooks", workdir / "runbooks")
    if (case / "inventory.yaml").exists():
        shutil.copy(case / "inventory.yaml", workdir / "inventory.yaml")
    args = shlex.split((case / "args").read_text())
    assert main(["plan", case.name, *args]) == 0
    out = capsys.readouterr().out
    assert out == (case / "plan.txt").read_text()
    assert "hunter2" not in out
    assert not (workdir / "state").exists()  # nothing ran


def test_show_markdown(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(workdir / "runbooks")
    shutil.copytree(ROOT / "captures" / "runbooks", workdir / "runbooks")
    assert main(["show", "captures", "--format", "md"]) == 0
    expected = (ROOT.parent / "show" / "captures.md").read_text()
    assert capsys.readouterr().out == expected
