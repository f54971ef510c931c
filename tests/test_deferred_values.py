"""Values decided at run time (they wait for a capture): one that turns out bad fails its step,
with its reason, and the failure policy applies."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_events, write_runbook

from runner.cli import main

CHILD = """
runbook: child
params:
  msg: {type: string, required: true}
  n: {type: integer, default: 1}
steps:
  - {id: c1, run: "echo child {{ msg }} {{ n }} >> trail", rollback: [{run: echo undo-c1 >> trail}]}
"""


def _parent(workdir: Path, with_: str) -> None:
    write_runbook(workdir, "child", CHILD)
    write_runbook(
        workdir,
        "parent",
        f"""
runbook: parent
steps:
  - id: p
    run: echo p >> trail; echo not-a-number
    capture: c
    rollback: [{{run: echo undo-p >> trail}}]
  - id: call
    call: child
    with: {with_}
""",
    )


def _outcomes(workdir: Path) -> dict[str, tuple[str, str]]:
    return {
        e["step"]: (e["status"], e["reason"])
        for e in run_events(workdir / "state")
        if e["event"] == "step.outcome"
    }


def test_a_call_param_that_is_bad_at_run_time_fails_the_call_and_rolls_back(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _parent(workdir, '{msg: hi, n: "{{ c }}"}')
    assert main(["run", "parent"]) == 1
    assert (workdir / "trail").read_text().split() == ["p", "undo-p"]
    status, reason = _outcomes(workdir)["call"]
    assert status == "failed"
    assert "param 'n'" in reason and "'not-a-number' is not a valid integer" in reason
    events = run_events(workdir / "state")
    assert not [e for e in events if e["event"] == "run.error"]
    assert events[-1]["outcome"] == "rolled-back" and events[-1]["exit_code"] == 1
    assert "is not a valid integer" in capsys.readouterr().out


def test_a_bad_constant_param_of_a_deferred_call_is_refused_before_anything_runs(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `msg` waits for the capture, `n` does not: it can be checked at plan time
    _parent(workdir, '{msg: "{{ c }}", n: not-an-int}')
    assert main(["plan", "parent"]) == 2
    assert main(["run", "parent"]) == 2
    assert not (workdir / "trail").exists() and not (workdir / "state").exists()
    err = capsys.readouterr().err
    assert (
        "runbooks/parent.yaml:8:5: steps[1]: on host 'local': step 'call': call 'child': "
        "child: param 'n': 'not-an-int' is not a valid integer"
    ) in err


@pytest.mark.parametrize(
    "use",
    [
        'run: "echo {{ c + 1 }}"',
        'http: {url: "http://127.0.0.1:9/{{ c + 1 }}"}',
        'when: "c + 1 > 0"\n    run: "true"',
        'run: "true"\n    env: {X: "{{ c + 1 }}"}',
        'call: child\n    with: {msg: "{{ c + 1 }}"}',
    ],
    ids=["run", "http-url", "when", "env", "call-with"],
)
def test_a_template_that_fails_at_run_time_fails_its_step_and_rolls_back(
    workdir: Path, use: str
) -> None:
    write_runbook(workdir, "child", CHILD)
    write_runbook(
        workdir,
        "tpl",
        f"""
runbook: tpl
steps:
  - id: p
    run: echo p >> trail; echo abc
    capture: c
    rollback: [{{run: echo undo-p >> trail}}]
  - id: use
    {use}
""",
    )
    assert main(["run", "tpl"]) == 1
    assert (workdir / "trail").read_text().split() == ["p", "undo-p"]
    status, reason = _outcomes(workdir)["use"]
    assert status == "failed" and "TypeError" in reason, reason
    events = run_events(workdir / "state")
    assert not [e for e in events if e["event"] == "run.error"]
    assert events[-1]["outcome"] == "rolled-back"


def test_a_template_that_fails_at_plan_time_is_a_located_error(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(
        workdir,
        "tp",
        """
runbook: tp
params: {p: {type: string, default: abc}}
steps:
  - {id: use, run: "echo {{ p + 1 }} > out"}
""",
    )
    assert main(["run", "tp"]) == 2
    assert not (workdir / "out").exists() and not (workdir / "state").exists()
    assert "runbooks/tp.yaml:5:5: steps[0]: on host 'local': step 'use': TypeError" in (
        capsys.readouterr().err
    )
