"""Issue 18, resource exhaustion: regexes and templates run with time and size limits, and
`validate` refuses what `run` would refuse before its first command (real CLI, real processes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_events, write_runbook

from runner.cli import main


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,  # before the fix these ran for over ten minutes
    )


def test_a_backtracking_stdout_matches_is_stopped_and_fails_the_step(workdir: Path) -> None:
    write_runbook(
        workdir,
        "re",
        "runbook: re\nsteps:\n"
        "  - id: big\n    run: head -c 1000000 /dev/zero | tr '\\0' a\n"
        "    expect: {stdout_matches: 'a+b'}\n",
    )
    proc = run(workdir, "run", "re", "--quiet")
    assert proc.returncode == 1, proc.stderr
    [finished] = [r for r in run_events(workdir / "state") if r["event"] == "step.finished"]
    assert "stdout_matches took over" in finished["reason"]


@pytest.mark.parametrize(
    ("command", "why"),
    [
        (
            "echo {% for i in range(9999) %}{% for j in range(9999) %}{% for k in range(9999) %}"
            "{% endfor %}{% endfor %}{% endfor %}",
            "took over",
        ),
        ("echo {% for i in range(100000) %}{% endfor %}", "range of 100000 items"),
        ("echo {{ 'a' * size }}", "'*' would make 3000000000"),
    ],
    ids=["nested-loops", "range", "string-size"],
)
def test_a_template_over_its_limits_fails_before_anything_runs(
    workdir: Path, command: str, why: str
) -> None:
    write_runbook(
        workdir,
        "t",
        "runbook: t\nparams: {size: {type: integer, default: 3000000000}}\n"
        f'steps:\n  - {{id: a, run: "touch ran"}}\n  - {{id: b, run: "{command}"}}\n',
    )
    proc = run(workdir, "run", "t")
    assert proc.returncode == 2 and why in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (workdir / "ran").exists()


@pytest.mark.parametrize(
    ("field", "why"),
    [
        ("run: \"echo {{ 'x' | nosuch }}\"", "No filter named 'nosuch'"),
        ("run: 'true'\n    when: \"1 + 'a'\"", "always fails: TypeError"),
        ("run: \"echo {{ ''.__class__ }}\"", "sandbox refuses attribute '__class__'"),
        ("run: \"echo {{ 'a' * 3000000000 }}\"", "'*' would make"),
    ],
    ids=["unknown-filter", "constant-type-error", "sandbox-escape", "string-size"],
)
def test_validate_refuses_what_run_refuses_before_its_first_command(
    workdir: Path, field: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "v", f"runbook: v\nsteps:\n  - id: a\n    {field}\n")
    assert main(["validate"]) == 2
    err = capsys.readouterr().err
    assert why in err and "runbooks/v.yaml:" in err, err
    proc = run(workdir, "run", "v")
    assert proc.returncode == 2 and why in proc.stderr and "Traceback" not in proc.stderr
    assert not (workdir / "state" / "runs").exists()
