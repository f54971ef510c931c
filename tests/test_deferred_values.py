"""Values decided at run time (they wait for a capture): one that turns out bad fails its step,
with its reason, and the failure policy applies; one the plan already knows can never be set
(its step is skipped) is refused before anything runs."""

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


SKIPPED = """
runbook: skipcap
params: {do_a: {type: boolean, default: false}}
steps:
  - {id: first, run: echo first >> trail, rollback: [{run: echo undo-first >> trail}]}
  - {id: a, when: do_a, run: echo value-a, capture: x}
  - {id: live, run: echo live, capture: y}
  - id: b
    %s
"""


@pytest.mark.parametrize(
    ("use", "where"),
    [
        ('run: "echo got {{ x }} >> trail"', "9:10: steps[3].run"),
        ('run: "echo {{ y }} {{ x }} >> trail"', "9:10: steps[3].run"),  # waits for y too
        ('when: "x == \'value-a\'"\n    run: "true"', "9:11: steps[3].when"),
        ('run: "true"\n    env: {X: "{{ x }}"}', "10:14: steps[3].env.X"),
        ('run: "true"\n    rollback: [{run: "echo {{ x }}"}]', "10:22: steps[3].rollback[0].run"),
    ],
    ids=["run", "deferred-run", "when", "env", "rollback"],
)
def test_a_capture_of_a_step_the_plan_skips_is_refused_before_anything_runs(
    workdir: Path, capsys: pytest.CaptureFixture[str], use: str, where: str
) -> None:
    write_runbook(workdir, "skipcap", SKIPPED % use)
    assert main(["plan", "skipcap"]) == 2
    assert main(["run", "skipcap"]) == 2
    assert not (workdir / "trail").exists() and not (workdir / "state").exists()
    err = capsys.readouterr().err
    assert (
        f"runbooks/skipcap.yaml:{where}: on host 'local': step 'b': capture 'x' is never set: "
        "step 'a' is skipped (when is false: do_a, where do_a=False)"
    ) in err, err
    # with the step that sets it running, the same runbook runs
    assert main(["run", "skipcap", "-p", "do_a=true"]) in (0, 1)
    assert "undefined" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "use",
    [
        "run: \"echo got {{ x | default('none') }} >> trail\"",
        'when: "x is defined"\n    run: "echo got {{ x }} >> trail"',
        'run: "echo got {{ x if x is defined else y }} >> trail"',
        'when: "do_a and x == \'value-a\'"\n    run: "echo got {{ x }} >> trail"',
    ],
    ids=["default", "is-defined", "conditional", "short-circuit"],
)
def test_a_guarded_use_of_a_skipped_capture_is_allowed(workdir: Path, use: str) -> None:
    write_runbook(workdir, "skipcap", SKIPPED % use)
    assert main(["run", "skipcap"]) == 0
    trail = (workdir / "trail").read_text().split()
    assert trail[0] == "first" and "undefined" not in " ".join(trail)


def test_a_capture_of_a_step_not_targeted_on_a_host_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(
        workdir,
        "onhost",
        """
runbook: onhost
targets: [local, elsewhere]
steps:
  - {id: a, "on": [elsewhere], run: echo a, capture: x}
  - {id: b, run: "echo {{ x }} > out"}
""",
    )
    (workdir / "inv.yaml").write_text(
        "all:\n  hosts:\n    local: {ansible_connection: local}\n"
        "    elsewhere: {ansible_connection: local}\n"
    )
    assert main(["run", "onhost", "-i", "inv.yaml"]) == 2
    assert not (workdir / "out").exists()
    assert (
        "runbooks/onhost.yaml:6:18: steps[1].run: on host 'local': step 'b': capture 'x' is "
        "never set: step 'a' is not-targeted (on: elsewhere)"
    ) in capsys.readouterr().err
