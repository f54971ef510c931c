"""Checklists against real runbooks, real subprocesses and real journals, through `main([...])`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from conftest import REPO, write_runbook

from runner.audit.chain import verify_run
from runner.checklists import definition as cl
from runner.checklists import state as cs
from runner.cli import main
from runner.commands import checklist as cmd
from runner.errors import UsageError

DAY = "2026-11-24"
UTC = dt.timezone.utc


def write_checklist(root: Path, name: str, text: str) -> Path:
    (root / "checklists").mkdir(exist_ok=True)
    path = root / "checklists" / f"{name}.yaml"
    path.write_text(text)
    return path


def records(state: Path, checklist: str, instance: str) -> list[dict]:
    path = cs.journal_path(state, checklist, instance)
    return [json.loads(line) for line in path.read_text().splitlines()]


def cli(*args: str) -> int:
    return main(["checklist", *args])


@pytest.fixture
def project(workdir: Path) -> Path:
    write_runbook(
        workdir,
        "greet",
        """
runbook: greet
params:
  who: {type: string, default: world}
steps:
  - {id: hello, run: "echo hello {{ who }} > greeted"}
""",
    )
    write_checklist(
        workdir,
        "ops",
        """
checklist: ops
title: Ops
period: daily
items:
  - id: greet
    title: Greeting runbook
    runbook: greet
    with: {who: checklist}
  - id: probe
    title: A check with output
    check: {run: "echo probe-output", expect: {stdout_contains: probe}}
    signoff: {meaning: reviewed}
  - id: restore
    title: Restore test
    signoff: {meaning: verified, second_person: true}
  - id: extra
    title: Optional extra
    required: false
""",
    )
    return workdir


def test_start_run_sign_complete_and_state_rebuilt_from_the_log_alone(project: Path) -> None:
    state = project / "state"
    assert cli("start", "ops", "--period", DAY) == 0
    assert cli("run", "ops", "--period", DAY, "--by", "alice") == 0
    assert (project / "greeted").read_text() == "hello checklist\n"
    assert cli("sign", "ops", "probe", "--period", DAY, "--by", "bob", "--note", "looks fine") == 0
    assert cli("sign", "ops", "restore", "--period", DAY, "--by", "carol") == 0  # performed it
    assert cli("sign", "ops", "restore", "--period", DAY, "--by", "dave") == 0  # second person
    assert cli("complete", "ops", "--period", DAY, "--by", "erin") == 0

    path = cs.journal_path(state, "ops", DAY)
    assert path.name == f"ops-{DAY}.jsonl"
    verdict = verify_run(path)
    assert verdict.ok and verdict.run_id == f"ops-{DAY}"

    # the state is derived from the journal's records and nothing else
    inst = cs.derive(records(state, "ops", DAY))
    assert inst.completed is not None and inst.completed["by"] == "erin"
    items = inst.items
    assert {k: v.state for k, v in items.items()} == {
        "greet": "done",
        "probe": "done",
        "restore": "done",
        "extra": "pending",
    }
    greet = items["greet"].evidence
    assert greet is not None and greet["exit_code"] == 0 and greet["outcome"]
    run_log = state / "runs" / f"{greet['run_id']}.jsonl"
    assert verify_run(run_log).ok
    probe = items["probe"]
    assert probe.performer == "alice" and probe.evidence is not None
    assert probe.evidence["stdout_tail"] == "probe-output\n"
    (sig,) = probe.signatures
    assert sig["by"] == "bob" and sig["meaning"] == "reviewed" and sig["note"] == "looks fine"
    assert sig["evidence_sha256"] == probe.evidence_sha256 == cs.evidence_hash(probe.evidence)
    assert {"user", "host", "at"} <= sig.keys() and sig["at"].endswith("Z")
    assert items["restore"].performer == "carol"
    assert [s["by"] for s in items["restore"].signatures] == ["carol", "dave"]


def test_status_formats(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli("start", "ops", "--period", DAY)
    cli("run", "ops", "greet", "--period", DAY)
    capsys.readouterr()
    assert cli("status", "ops", "--period", DAY) == 0
    text = capsys.readouterr().out
    assert "1/3 required items settled" in text and "greet" in text and "run " in text
    assert cli("status", "ops", "--period", DAY, "--format", "md") == 0
    assert "| item | state | who | when | evidence |" in capsys.readouterr().out
    assert main(["--json", "checklist", "status", "ops", "--period", DAY]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["progress"] == {"settled": 1, "required": 3}


def test_complete_with_a_pending_item_is_refused_and_names_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli("start", "ops", "--period", DAY)
    cli("run", "ops", "--period", DAY)
    cli("sign", "ops", "probe", "--period", DAY, "--by", "bob")
    capsys.readouterr()
    assert cli("complete", "ops", "--period", DAY, "--by", "erin") == 2
    err = capsys.readouterr().err
    assert "restore" in err and "probe" not in err and "extra" not in err
    assert not any(
        r["event"] == "checklist.completed" for r in records(project / "state", "ops", DAY)
    )
    assert (
        cli("skip", "ops", "restore", "--period", DAY, "--by", "erin", "--reason", "no spare host")
        == 0
    )
    assert cli("complete", "ops", "--period", DAY, "--by", "erin") == 0
    assert cli("sign", "ops", "probe", "--period", DAY, "--by", "bob") == 2  # closed


def test_the_performer_cannot_second_sign(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_checklist(
        project,
        "pair",
        """
checklist: pair
period: daily
items:
  - id: probe
    title: Checked by someone else
    check: {run: "true"}
    signoff: {meaning: approved, second_person: true}
""",
    )
    for name in ("ops", "pair"):
        cli("start", name, "--period", DAY)
    # a manual item: the first signer performed it
    assert cli("sign", "ops", "restore", "--period", DAY, "--by", "carol") == 0
    capsys.readouterr()
    assert cli("sign", "ops", "restore", "--period", DAY, "--by", "carol") == 2
    assert "second person" in capsys.readouterr().err
    # an automated item: whoever ran it
    assert cli("run", "pair", "--period", DAY, "--by", "alice") == 0
    assert cli("sign", "pair", "probe", "--period", DAY, "--by", "alice") == 2
    assert cli("sign", "pair", "probe", "--period", DAY, "--by", "bob") == 0
    inst = cs.derive(records(project / "state", "pair", DAY))
    assert inst.items["probe"].state == "done"
    assert [s["by"] for s in inst.items["probe"].signatures] == ["bob"]


def test_a_failed_item_cannot_be_signed_until_rerun_or_skipped(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_checklist(
        project,
        "flaky",
        """
checklist: flaky
period: daily
items:
  - id: flag
    title: Needs a flag file
    check: {run: "test -f flag"}
    signoff: {meaning: reviewed}
  - id: never
    title: Always fails
    check: {run: "exit 3"}
    signoff: {meaning: reviewed}
""",
    )
    cli("start", "flaky", "--period", DAY)
    assert cli("run", "flaky", "--period", DAY, "--by", "alice") == 1
    capsys.readouterr()
    assert cli("sign", "flaky", "flag", "--period", DAY, "--by", "bob") == 2
    assert "failed" in capsys.readouterr().err
    # re-run after fixing the cause: the new run appends, history keeps both
    (project / "flag").touch()
    assert cli("run", "flaky", "flag", "--period", DAY, "--by", "alice") == 0
    assert cli("sign", "flaky", "flag", "--period", DAY, "--by", "bob") == 0
    # skip with a reason, then a signature acknowledges the skip
    assert cli("sign", "flaky", "never", "--period", DAY, "--by", "bob") == 2
    assert cli("skip", "flaky", "never", "--period", DAY, "--reason", "", "--by", "bob") == 2
    assert (
        cli("skip", "flaky", "never", "--period", DAY, "--reason", "known bug", "--by", "bob") == 0
    )
    assert cli("sign", "flaky", "never", "--period", DAY, "--by", "carol") == 0
    assert cli("complete", "flaky", "--period", DAY, "--by", "carol") == 0
    inst = cs.derive(records(project / "state", "flaky", DAY))
    flag = inst.items["flag"]
    assert [h["event"] for h in flag.history] == ["item.ran", "item.ran", "item.signed"]
    assert [h["ok"] for h in flag.history[:2]] == [False, True]
    assert inst.items["never"].state == "skipped" and inst.items["never"].reason == "known bug"


def test_a_runbook_that_fails_marks_the_item_failed(project: Path) -> None:
    write_runbook(project, "broken", "runbook: broken\nsteps:\n  - {id: x, run: 'exit 4'}\n")
    write_checklist(
        project,
        "rb",
        "checklist: rb\nperiod: daily\nitems:\n  - {id: b, title: B, runbook: broken}\n",
    )
    cli("start", "rb", "--period", DAY)
    assert cli("run", "rb", "--period", DAY) == 1
    (ran,) = [r for r in records(project / "state", "rb", DAY) if r["event"] == "item.ran"]
    assert ran["ok"] is False and ran["evidence"]["exit_code"] == 1
    assert (project / "state" / "runs" / f"{ran['evidence']['run_id']}.jsonl").is_file()


@pytest.mark.parametrize(
    ("when", "period", "expected"),
    [
        ("2026-12-31T23:59:59", "weekly", "2026-W53"),
        ("2027-01-01T00:00:00", "weekly", "2026-W53"),  # ISO weeks cross the year
        ("2027-01-03T23:59:59", "weekly", "2026-W53"),
        ("2027-01-04T00:00:00", "weekly", "2027-W01"),
        ("2026-12-31T23:59:59", "quarterly", "2026-Q4"),
        ("2027-01-01T00:00:00", "quarterly", "2027-Q1"),
        ("2026-09-30T23:59:59", "quarterly", "2026-Q3"),
        ("2026-12-31T23:59:59", "monthly", "2026-12"),
        ("2027-01-01T00:00:00", "daily", "2027-01-01"),
    ],
)
def test_periods_at_boundaries(when: str, period: str, expected: str) -> None:
    now = dt.datetime.fromisoformat(when).replace(tzinfo=UTC)
    assert cl.current_period(period, now) == expected
    assert cl.check_instance(period, expected) == expected


@pytest.mark.parametrize(
    ("period", "bad"),
    [
        ("weekly", "2026-W54"),
        ("weekly", "2027-W53"),  # 2027 has 52 ISO weeks
        ("monthly", "2026-13"),
        ("quarterly", "2026-Q5"),
        ("daily", "2026-02-30"),
        ("daily", "2026-W48-1"),  # an ISO week date: the same day under a second name
        ("daily", "2026-328"),  # an ordinal date
        ("daily", "2026-11-2\u0664"),  # a digit, but not an ASCII one
        ("weekly", "2026-W48-1"),
        ("once", "../escape"),
        ("once", "INC-1\n"),
    ],
)
def test_impossible_periods_are_refused(period: str, bad: str) -> None:
    with pytest.raises(UsageError, match="is not a"):
        cl.check_instance(period, bad)


def test_a_daily_period_has_one_name(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`2026-W48-1` is 2026-11-23 as an ISO week date: it was accepted, a second instance for
    that day under a name `due` never looks at."""
    write_checklist(workdir, "d", "checklist: d\nperiod: daily\nitems: [{id: a, title: A}]\n")
    assert cli("start", "d", "--period", "2026-W48-1") == 2
    err = capsys.readouterr().err
    assert "expected YYYY-MM-DD" in err and "Traceback" not in err
    assert not (workdir / "state" / "checklists").exists()


def _due(state: Path, when: str, capsys: pytest.CaptureFixture[str]) -> set[str]:
    capsys.readouterr()
    now = dt.datetime.fromisoformat(when).replace(tzinfo=UTC)
    assert cmd.due(state, now=now, as_json=True) == 0
    return {row["checklist"] for row in json.loads(capsys.readouterr().out)}


def test_due_at_period_boundaries(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, period in [("d", "daily"), ("w", "weekly"), ("q", "quarterly"), ("inc", "once")]:
        write_checklist(
            workdir, name, f"checklist: {name}\nperiod: {period}\nitems: [{{id: a, title: A}}]\n"
        )
    state = workdir / "state"
    assert _due(state, "2026-12-31T12:00:00", capsys) == {"d", "w", "q"}  # once is never due
    for name, instance in [("d", "2026-12-31"), ("w", "2026-W53"), ("q", "2026-Q4")]:
        assert cli("start", name, "--period", instance) == 0
        assert cli("sign", name, "a", "--period", instance, "--by", "alice") == 0
        assert name in _due(state, "2026-12-31T12:00:00", capsys)  # signed, not yet completed
        assert cli("complete", name, "--period", instance, "--by", "alice") == 0
    assert _due(state, "2026-12-31T23:59:59", capsys) == set()
    # the year changes: a new day and a new quarter, but ISO week 2026-W53 runs to Sunday 3 January
    assert _due(state, "2027-01-01T00:00:00", capsys) == {"d", "q"}
    assert _due(state, "2027-01-03T23:59:59", capsys) == {"d", "q"}
    assert _due(state, "2027-01-04T00:00:00", capsys) == {"d", "w", "q"}


def test_start_uses_the_injected_clock(workdir: Path) -> None:
    write_checklist(workdir, "w", "checklist: w\nperiod: weekly\nitems: [{id: a, title: A}]\n")
    c = cl.load("w")
    now = dt.datetime(2027, 1, 2, 10, 0, tzinfo=UTC)
    assert cmd.start(c, cl.current_period(c.period, now), workdir / "state", by="x", now=now) == 0
    (rec,) = records(workdir / "state", "w", "2026-W53")
    assert rec["instance"] == "2026-W53" and rec["at"] == "2027-01-02T10:00:00.000000Z"


def test_once_checklists_need_a_name(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_checklist(workdir, "pir", "checklist: pir\nperiod: once\nitems: [{id: a, title: A}]\n")
    assert cli("start", "pir") == 2
    assert cli("start", "pir", "--period", "INC-20261124-1430") == 0
    assert cs.journal_path(workdir / "state", "pir", "INC-20261124-1430").is_file()


def test_an_edited_journal_is_exit_4(project: Path) -> None:
    cli("start", "ops", "--period", DAY)
    cli("sign", "ops", "restore", "--period", DAY, "--by", "carol")
    path = cs.journal_path(project / "state", "ops", DAY)
    path.write_text(path.read_text().replace('"carol"', '"mallory"'))
    assert cli("status", "ops", "--period", DAY) == 4
    assert cli("sign", "ops", "restore", "--period", DAY, "--by", "dave") == 4


def test_every_shipped_checklist_validates(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("RUNBOOK_PATH", raising=False)
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "checklists").glob("*.yaml"))
    assert {Path(f).stem for f in files} >= {
        "daily",
        "weekly",
        "monthly",
        "quarterly",
        "post-incident-review",
    }
    assert main(["validate", *files]) == 0
    out = capsys.readouterr().out
    assert all(f"ok  {f}" in out for f in files)


def test_checklist_errors_name_their_place(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_checklist(
        workdir,
        "bad",
        """checklist: bad
period: daily
items:
  - id: a
    title: A
    signof: {meaning: reviewed}
  - id: b
    title: B
    runbook: nowhere
""",
    )
    assert main(["validate", "checklists/bad.yaml"]) == 2
    err = capsys.readouterr().err
    assert "checklists/bad.yaml:6:5: items[0].signof: unknown key 'signof'" in err
    assert main(["validate"]) == 2
    write_checklist(
        workdir,
        "bad",
        "checklist: bad\nperiod: daily\nitems:\n  - {id: b, title: B, runbook: nowhere}\n",
    )
    capsys.readouterr()
    assert main(["validate", "checklists/bad.yaml"]) == 2
    assert "checklists/bad.yaml:4:32: items[0].runbook: cannot load runbook 'nowhere'" in (
        capsys.readouterr().err
    )


def test_a_check_timeout_reads_durations_as_runbooks_do(project: Path) -> None:
    """`250ms` is a quarter of a second, as in a runbook (it was read as 250 s, or refused)."""
    write_checklist(
        project,
        "quick",
        """
checklist: quick
period: daily
items:
  - id: slow
    title: A check slower than its timeout
    check: {run: "sleep 30", timeout: 250ms}
""",
    )
    cli("start", "quick", "--period", DAY)
    assert cli("run", "quick", "--period", DAY, "--by", "alice") == 1
    slow = cs.derive(records(project / "state", "quick", DAY)).items["slow"]
    assert slow.state == "failed"
    assert slow.evidence is not None and slow.evidence["error"] == "timed out after 0.25s"
