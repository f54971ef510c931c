"""Case files: tests/cases/<name>/runbook.yaml and the expected output of `runbook validate`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runner.cli import main

CASES = sorted(
    p for p in (Path(__file__).parent / "cases").iterdir() if (p / "runbook.yaml").is_file()
)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_validate_case(case: Path, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = workdir / "runbooks" / f"{case.name}.yaml"
    shutil.copy(case / "runbook.yaml", target)
    code = main(["validate", str(target)])
    out, err = capsys.readouterr()
    got = [
        line.replace(f"runbooks/{case.name}.yaml", "runbook.yaml")
        for line in (out + err).splitlines()
        if "problem(s)" not in line
    ]
    expected = (case / "expected.txt").read_text().splitlines()
    assert got == expected
    assert code == (0 if expected == ["ok  runbook.yaml"] else 2)


def test_invalid_runbook_runs_nothing(workdir: Path) -> None:
    (workdir / "runbooks" / "bad.yaml").write_text(
        "runbook: bad\nsteps:\n  - {id: a, run: touch ran}\n  - {id: b, run: 'echo {{ nope }}'}\n"
    )
    assert main(["run", "bad"]) == 2
    assert not (workdir / "ran").exists()
    assert not (workdir / "state").exists()
