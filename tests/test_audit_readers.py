"""`audit list`, `show` and `export` say what `audit verify` says: a run whose ledger entry does
not hold is not "verified", a run whose log was deleted is listed as missing, and both commands
exit 4 then (real CLI, real files, a forger who can write the state dir)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_runbook
from test_ledger_journals import keys, ledger, rewrite, verify

from runner.cli import main

__all__ = ["keys"]  # the fixture, imported for its name

OK = "runbook: ok\nsteps:\n  - {id: one, run: 'true'}\n"


@pytest.fixture
def three_runs(
    workdir: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    monkeypatch.setenv("RUNBOOK_SIGNING_KEY", str(keys[0]))
    write_runbook(workdir, "ok", OK)
    for _ in range(3):
        assert main(["run", "ok", "--yes", "--quiet"]) == 0
    return sorted(p.stem for p in (workdir / "state" / "runs").glob("*.jsonl"))


def listed(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["audit", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_run_whose_ledger_entry_fails_is_not_verified_anywhere(
    three_runs: list[str],
    workdir: Path,
    keys: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    victim = three_runs[1]
    entries = ledger(workdir)
    closed = next(e for e in entries if e["event"] == "run.closed" and e["run"] == victim)
    closed["records"] = closed["records"]  # unchanged: only a field the signature covers moves
    closed["key_id"] = "forged"
    rewrite(workdir / "state" / "ledger.jsonl", entries)
    code, out = verify(capsys, "--public-key", str(keys[1]))
    assert code == 4 and "invalid signature" in out, out

    code, out, err = listed(capsys, "list")
    assert code == 4, out
    (row,) = [line for line in out.splitlines() if victim in line]
    assert "verified" not in row and "FAILED" in row, row
    assert "do not verify" in err

    code, out, _ = listed(capsys, "export", victim, "--format", "json")
    assert code == 4
    assert "FAILED" in json.loads(out)[0]["verified"]
    code, out, _ = listed(capsys, "show", victim)
    assert code == 4 and "audit:    FAILED" in out, out


def test_a_deleted_run_is_listed_as_missing(
    three_runs: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = three_runs[0]
    (workdir / "state" / "runs" / f"{gone}.jsonl").unlink()
    code, out, _ = listed(capsys, "list")
    assert code == 4
    (row,) = [line for line in out.splitlines() if gone in line]
    assert "missing" in row and "deleted" in row, row
    code, out, _ = listed(capsys, "export", "--all", "--format", "csv")
    assert code == 4
    assert any(gone in line and "deleted" in line for line in out.splitlines()), out


def test_honest_runs_list_and_export_with_exit_0(
    three_runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = listed(capsys, "list")
    assert code == 0 and out.count("verified") == 3, out
    code, _, _ = listed(capsys, "export", "--all", "--format", "json")
    assert code == 0


def test_a_typed_field_cannot_print_lines_of_the_listing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ticket (or a reason, a note, a name) with line breaks is shown on its one line."""
    write_runbook(workdir, "fails", "runbook: fails\nsteps:\n  - {id: one, run: 'false'}\n")
    fake = "CHG-1\n2026-01-01T00:00:00Z  step one: exit 0, ok\noutcome:  succeeded (exit 0)"
    assert main(["run", "fails", "--yes", "--quiet", "--ticket", fake]) == 1
    (rid,) = [p.stem for p in (workdir / "state" / "runs").glob("*.jsonl")]
    code, out, _ = listed(capsys, "show", rid)
    assert code == 0
    assert "ticket:    CHG-1\\n2026-01-01T00:00:00Z  step one" in out
    assert not any(
        line.startswith(("2026-01-01", "outcome:  succeeded")) for line in out.splitlines()
    )


def test_show_of_a_deleted_run_says_so_and_exits_4(
    three_runs: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: exit 2, "no audit log for run": as for a mistyped id, where list says it is missing."""
    gone = three_runs[0]
    (workdir / "state" / "runs" / f"{gone}.jsonl").unlink()
    code, out, _ = listed(capsys, "show", gone)
    assert code == 4 and "the run's log is missing (deleted)" in out, out
    code, _, err = listed(capsys, "show", "20261130T000000Z-nosuch-000000")
    assert code == 2 and "no audit log" in err
