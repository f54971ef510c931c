"""Issue 18, item 1: a ledger seal's signature covers everything it vouches with, and a sign-off
no signed seal vouches for counts for nothing (real CLI, real files, a forger's edits)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_ledger_journals import DAY, keys, ledger, lines, make_journal, rewrite, verify

from runner.checklists import state as cs
from runner.cli import main

__all__ = ["keys"]  # the fixture, imported for its name


def forge_sign_off(path: Path, signed: dict | None = None) -> None:
    """Append a chained `item.signed` by bob (a copy of `signed`, else of the journal's own), as
    someone who can write the state dir (and has no private key) can."""
    records = [json.loads(x) for x in lines(path)]
    signed = signed or next(r for r in records if r["event"] == "item.signed")
    rewrite(path, [*records, dict(signed, by="bob", note="forged")])


@pytest.fixture
def signing_key(keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """Commands sign their seals (RUNBOOK_SIGNING_KEY); returns the public key."""
    monkeypatch.setenv("RUNBOOK_SIGNING_KEY", str(keys[0]))
    return keys[1]


def test_moving_a_seals_first_over_a_forged_record_is_caught(
    workdir: Path, signing_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make_journal(workdir)
    forge_sign_off(path)  # record 4, vouched by no seal
    assert main(["checklist", "skip", "ops", "probe", "--period", DAY, "--reason", "r"]) == 0
    entries = ledger(workdir)
    assert entries[-1]["first"] == 5
    entries[-1]["first"] = 4  # the next command's seal now claims the forged record too
    rewrite(workdir / "state" / "ledger.jsonl", entries)
    code, out = verify(capsys, "--public-key", str(signing_key))
    assert code == 4, out
    assert "invalid signature" in out


def test_an_unvouched_sign_off_is_neither_shown_done_nor_completes(
    workdir: Path, signing_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "checklists").mkdir()
    (workdir / "checklists" / "ops.yaml").write_text(
        "checklist: ops\ntitle: Ops\nperiod: daily\nitems:\n"
        "  - id: restore\n    title: Restore test\n"
    )
    assert main(["checklist", "start", "ops", "--period", DAY]) == 0
    assert main(["checklist", "sign", "ops", "restore", "--period", DAY, "--by", "al"]) == 0
    path = cs.journal_path(workdir / "state", "ops", DAY)
    records = [json.loads(x) for x in lines(path)]
    rewrite(path, records[:1])  # the real sign-off gone; the seal of `start` still holds
    forge_sign_off(path, records[1])
    capsys.readouterr()
    assert main(["checklist", "status", "ops", "--period", DAY, "--format", "json"]) == 0
    out, err = capsys.readouterr()
    (item,) = json.loads(out)["items"]
    assert item["state"] != "done" and item["signatures"] == []
    assert "not vouched for" in err
    assert main(["checklist", "complete", "ops", "--period", DAY]) == 2
    assert "pending required items: restore" in capsys.readouterr().err
