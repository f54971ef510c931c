"""Issue 18, item 2: every run, open or closed, is accounted for by a signed ledger entry from its
first record on, and each signed entry names the ledger entry before it: a fabricated run, a run
dropped with its entries, a truncated run whose closing entry was dropped, and garbage after a
closed run are all caught (real CLI, real files, a forger who has no private key)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_runbook
from test_ledger_journals import keys, ledger, rewrite, verify

from runner.cli import main

__all__ = ["keys"]  # the fixture, imported for its name


@pytest.fixture
def three_runs(
    workdir: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> list[Path]:
    monkeypatch.setenv("RUNBOOK_SIGNING_KEY", str(keys[0]))
    write_runbook(workdir, "w", "runbook: w\nsteps:\n  - {id: a, run: echo a}\n")
    logs = []
    for _ in range(3):
        before = set((workdir / "state" / "runs").glob("*.jsonl"))
        assert main(["run", "w"]) == 0
        (new,) = set((workdir / "state" / "runs").glob("*.jsonl")) - before
        logs.append(new)
    return logs


def records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def drop_entries(workdir: Path, run_id: str) -> None:
    path = workdir / "state" / "ledger.jsonl"
    rewrite(path, [e for e in ledger(workdir) if e.get("run") != run_id])


def test_a_fabricated_run_is_not_in_the_ledger(
    three_runs: list[Path], keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    fake = three_runs[0].with_name("20261124T000000Z-forged.jsonl")
    copied = [dict(r, run_id=fake.stem) for r in records(three_runs[0])]
    rewrite(fake, [r for r in copied if r["event"] != "run.signature"])
    code, out = verify(capsys)
    assert code == 4 and "forged: FAILED" in out and "not in the ledger" in out, out
    code, out = verify(capsys, "--public-key", str(keys[1]))
    assert code == 4 and "forged: FAILED" in out, out
    capsys.readouterr()
    main(["audit", "list"])
    (line,) = [x for x in capsys.readouterr().out.splitlines() if "forged" in x]
    assert "FAILED" in line


def test_a_run_dropped_with_its_ledger_entries_is_caught(
    three_runs: list[Path],
    workdir: Path,
    keys: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    middle = three_runs[1]
    middle.unlink()
    drop_entries(workdir, middle.stem)
    code, out = verify(capsys, "--public-key", str(keys[1]))
    assert code == 4 and "does not follow the entry it signed" in out, out


def test_a_truncated_run_whose_closing_entry_was_dropped_is_caught(
    three_runs: list[Path],
    workdir: Path,
    keys: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = three_runs[0]
    kept = [r for r in records(first) if r["event"] not in ("run.finished", "run.signature")]
    rewrite(first, kept)  # looks like a crash before the run finished...
    path = workdir / "state" / "ledger.jsonl"
    rewrite(
        path,
        [e for e in ledger(workdir) if e.get("event") != "run.closed" or e["run"] != first.stem],
    )
    code, out = verify(capsys, "--public-key", str(keys[1]))
    assert code == 4 and "does not follow the entry it signed" in out, out


def test_torn_garbage_after_a_closed_run_fails(
    three_runs: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with three_runs[2].open("ab") as f:
        f.write(b'{"garbage": tr')
    code, out = verify(capsys)
    assert code == 4 and "after the run closed" in out, out
