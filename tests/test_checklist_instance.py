"""Which items a checklist instance has comes from the instance (its `checklist.started` record),
not from the checklist file as it is now: the file may change after the instance started. The
file only says how a runnable item runs (its runbook or check)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_runbook

from runner.checklists import state as cs
from runner.cli import main

DAY = "2026-11-24"

FIRST = """
checklist: mini
period: daily
items:
  - {id: m, title: Manual}
  - {id: c, title: Check, check: {run: "echo checked"}}
  - {id: r, title: Runbook, runbook: greet}
"""


def cli(*args: str) -> int:
    return main(["checklist", *args, "--period", DAY])


def events(state: Path) -> list[str]:
    path = cs.journal_path(state, "mini", DAY)
    return [json.loads(line)["event"] for line in path.read_text().splitlines()]


def change_file(root: Path, text: str) -> None:
    (root / "checklists" / "mini.yaml").write_text(text)


@pytest.fixture
def started(workdir: Path) -> Path:
    write_runbook(
        workdir, "greet", "runbook: greet\nsteps:\n  - {id: s, run: 'echo hi > greeted'}\n"
    )
    (workdir / "checklists").mkdir()
    change_file(workdir, FIRST)
    assert cli("start", "mini") == 0
    return workdir


def test_renamed_items_are_still_the_instances(
    started: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """m and c renamed to m2 and c2 in the file: the instance still has m and c, and only them."""
    change_file(started, FIRST.replace("id: m,", "id: m2,").replace("id: c,", "id: c2,"))
    state = started / "state"
    before = events(state)
    capsys.readouterr()

    # the new ids are not the instance's: refused, nothing recorded (was a KeyError for sign, and
    # a "skipped" record that the state ignored for skip)
    for args in (
        ("sign", "mini", "m2"),
        ("skip", "mini", "m2", "--reason", "x"),
        ("run", "mini", "c2"),
    ):
        assert cli(*args) == 2, args
        err = capsys.readouterr().err
        assert "added to the checklist file after this instance started" in err, err
        assert "items: m, c, r" in err and "Traceback" not in err
    assert events(state) == before

    # the instance's m is signed as it was started (it was "no item 'm'")
    assert cli("sign", "mini", "m", "--by", "alice") == 0
    # c can no longer run: the file that says how has no c; the way out is a skip with a reason
    assert cli("run", "mini", "c") == 2
    err = capsys.readouterr().err
    assert "checklists/mini.yaml" in err and "changed since this instance started" in err, err
    assert "skip" in err
    assert cli("run", "mini") == 2  # all of them: refused before anything runs
    assert not (started / "greeted").exists()
    assert events(state) == [*before, "item.signed"]

    assert cli("skip", "mini", "c", "--reason", "renamed to c2", "--by", "alice") == 0
    assert cli("run", "mini") == 0  # r, whose definition is still in the file
    assert (started / "greeted").read_text() == "hi\n"
    assert cli("complete", "mini", "--by", "bob") == 0
    path = cs.journal_path(state, "mini", DAY)
    inst = cs.derive([json.loads(x) for x in path.read_text().splitlines()])
    assert {k: v.state for k, v in inst.items.items()} == {
        "m": "done",
        "c": "skipped",
        "r": "done",
    }


def test_an_item_added_to_the_file_is_not_the_instances(
    started: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change_file(started, FIRST + '  - {id: n, title: New, check: {run: "true"}}\n')
    before = events(started / "state")
    capsys.readouterr()
    for args in (
        ("sign", "mini", "n"),
        ("skip", "mini", "n", "--reason", "x"),
        ("run", "mini", "n"),
    ):
        assert cli(*args) == 2, args
        assert "added to the checklist file after this instance started" in capsys.readouterr().err
    # an id neither has: the instance's items, and no word of the file
    assert cli("sign", "mini", "zz") == 2
    err = capsys.readouterr().err
    assert "has no item 'zz'" in err and "items: m, c, r" in err and "added" not in err
    assert events(started / "state") == before
    # the new item is not required of this instance
    assert cli("run", "mini") == 0
    assert cli("sign", "mini", "m", "--by", "alice") == 0
    assert cli("complete", "mini", "--by", "bob") == 0


def test_an_item_removed_from_the_file_can_be_skipped_but_not_run(
    started: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change_file(started, "\n".join(x for x in FIRST.splitlines() if "id: c," not in x))
    capsys.readouterr()
    assert cli("run", "mini", "c") == 2
    err = capsys.readouterr().err
    assert (
        "cannot run c (no longer in the file)" in err
        and "changed since this instance started" in err
    )
    assert cli("complete", "mini", "--by", "bob") == 2
    assert "c (pending" in capsys.readouterr().err
    assert cli("skip", "mini", "c", "--reason", "retired", "--by", "alice") == 0
    assert cli("sign", "mini", "m", "--by", "alice") == 0
    assert cli("run", "mini") == 0
    assert cli("complete", "mini", "--by", "bob") == 0


def test_an_item_whose_kind_changed_cannot_run_as_the_file_now_says(
    started: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """c was a check when the instance started; the file now makes it a manual item."""
    change_file(started, FIRST.replace('check: {run: "echo checked"}', "description: by hand"))
    capsys.readouterr()
    assert cli("run", "mini", "c") == 2
    assert "c (now a manual item, was a check)" in capsys.readouterr().err
    assert "item.ran" not in events(started / "state")
