"""Every record of a run belongs to a command the ledger recorded: each command that appends to
a run (run, resume, rollback, resolve) enters the ledger with its first record (`run.opened`)
and closes with its last (`run.closed`). Records after a close that no later command opened were
appended by someone else, signed log or not; a single opening record is what a command stopped
at its very start leaves, and it is accounted for but never counted (real CLI, real files, a
forger who can write the state dir and has no key)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_runbook
from test_ledger_journals import keys, ledger, lines, rewrite, verify

from runner.cli import main

__all__ = ["keys"]  # the fixture, imported for its name

FAILS = """
runbook: deploy
on_failure: halt
steps:
  - {id: one, run: "echo one >> done.txt"}
  - {id: two, run: "echo two >> done.txt; test -f fixed"}
"""


def halted(workdir: Path) -> tuple[Path, str]:
    """A run halted at its failed step `two` (exit 1): its log and its id."""
    write_runbook(workdir, "deploy", FAILS)
    assert main(["run", "deploy", "--yes", "--quiet"]) == 1
    (log,) = (workdir / "state" / "runs").glob("*.jsonl")
    return log, log.stem


@pytest.fixture
def failed_run(workdir: Path) -> tuple[Path, str]:
    return halted(workdir)


def append(log: Path, event: str, **fields: object) -> None:
    """One record chained onto the log's last, as a forger without the key can."""
    records = [json.loads(x) for x in lines(log)]
    last = records[-1]
    same = {k: last[k] for k in ("ts", "run_id", "actor")}
    rewrite(log, [*records, {**same, "event": event, **fields}])


def test_a_run_state_appended_after_a_signed_close_fails_verification(
    workdir: Path,
    keys: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RUNBOOK_SIGNING_KEY", str(keys[0]))
    log, _ = halted(workdir)  # its last record: the run.signature
    # no run.finished among them: the tail of a signed log is not "open" for that
    append(log, "run.state", **{"from": "failed", "state": "succeeded", "exit_code": 0})
    code, out = verify(capsys, "--public-key", str(keys[1]))
    assert code == 4, out
    assert "after the ledger's last entry for the run" in out
    capsys.readouterr()
    assert main(["audit", "list"]) == 4
    (row,) = capsys.readouterr().out.splitlines()[-1:]
    assert "succeeded" not in row.split("FAILED")[0] and "failed" in row, row


def test_records_appended_after_an_unsigned_close_fail_too(
    failed_run: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    log, rid = failed_run
    append(log, "step.outcome", host="local", step="two", status="ok")
    append(log, "run.state", **{"from": "failed", "state": "succeeded", "exit_code": 0})
    code, out = verify(capsys)
    assert code == 4, out
    assert "records 13-14" in out or "after the ledger's last entry" in out
    capsys.readouterr()
    assert main(["resume", rid, "--yes", "--quiet"]) == 4  # nothing runs on a forged log
    assert "does not verify" in capsys.readouterr().err


def test_a_forged_opening_record_is_accounted_for_but_never_counted(
    failed_run: tuple[Path, str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One opening record after the close is what a resume stopped at its start leaves: the log
    still verifies, and nothing reads what it says. Forged, it claims step two was done."""
    log, rid = failed_run
    append(log, "run.resumed", completed_before={"local": ["one", "two"]}, confirmed=[])
    code, out = verify(capsys)
    assert code == 0, out
    assert "never entered in the ledger" in out
    (workdir / "fixed").touch()
    assert main(["resume", rid, "--yes", "--quiet"]) == 0
    assert (workdir / "done.txt").read_text().splitlines() == ["one", "two", "two"]
    code, out = verify(capsys)  # the stray record now sits between two commands' segments
    assert code == 0, out


def test_resolve_enters_the_ledger_with_its_first_record(
    failed_run: tuple[Path, str], workdir: Path
) -> None:
    _, rid = failed_run
    assert main(["resolve", rid, "--step", "two", "--by", "dana", "--reason", "by hand"]) == 0
    mine = [e["event"] for e in ledger(workdir) if e.get("run") == rid]
    assert mine == ["run.opened", "run.closed", "run.opened", "run.closed"]


def test_a_run_stopped_before_its_first_ledger_entry_resumes_more_than_once(
    failed_run: tuple[Path, str], workdir: Path
) -> None:
    """A crash between a run's first record and its `run.opened` leaves run.started outside
    every segment once a resume enters the ledger. Was: it was dropped as a stray opening
    record, and the next resume found "no run.started record"."""
    log, rid = failed_run
    log.write_bytes(lines(log)[0])  # run.started alone, as the crash left it
    (workdir / "state" / "ledger.jsonl").unlink()  # the run was its only entry
    assert main(["resume", rid, "--yes", "--quiet"]) == 1  # step two fails again
    assert main(["resume", rid, "--yes", "--quiet"]) == 1
    (workdir / "fixed").touch()
    assert main(["resume", rid, "--yes", "--quiet"]) == 0
    assert main(["audit", "verify"]) == 0
