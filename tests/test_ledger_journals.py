"""Checklist, approval and review journals are sealed in the ledger, so `audit verify` catches
one that was edited, rewritten, deleted or truncated (real files, the real CLI, no mocks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_runbook

from runner.audit import signing
from runner.audit.journal import canonical, record_hash
from runner.audit.ledger import signed_text
from runner.checklists import state as cs
from runner.cli import main

DAY = "2026-11-24"
CHECKLIST = """
checklist: ops
title: Ops
period: daily
items:
  - id: probe
    title: A check with output
    check: {run: "echo probe-output", expect: {stdout_contains: probe}}
  - id: restore
    title: Restore test
"""


def verify(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["audit", "verify", *extra])
    return code, capsys.readouterr().out


def ledger(workdir: Path) -> list[dict]:
    text = (workdir / "state" / "ledger.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def rewrite(path: Path, records: list[dict]) -> None:
    """Re-chain the records as a forger would, so that the file's own chain holds."""
    prev = "0" * 64
    for seq, r in enumerate(records, start=1):
        r["seq"], r["prev"] = seq, prev
        r["hash"] = record_hash(r)
        prev = r["hash"]
    path.write_bytes(b"".join(canonical(r) + b"\n" for r in records))


@pytest.fixture
def keys(workdir: Path) -> tuple[Path, Path]:
    assert main(["audit", "keygen", "--out", str(workdir / "keys" / "audit")]) == 0
    return workdir / "keys" / "audit", workdir / "keys" / "audit.pub"


def make_journal(workdir: Path) -> Path:
    """A checklist instance with three records (started, ran, signed), each command sealed."""
    (workdir / "checklists").mkdir()
    (workdir / "checklists" / "ops.yaml").write_text(CHECKLIST)
    assert main(["checklist", "start", "ops", "--period", DAY]) == 0
    assert main(["checklist", "run", "ops", "--period", DAY, "--quiet"]) == 0
    assert main(["checklist", "sign", "ops", "restore", "--period", DAY, "--by", "alice"]) == 0
    return cs.journal_path(workdir / "state", "ops", DAY)


@pytest.fixture
def journal(workdir: Path) -> Path:
    return make_journal(workdir)


def test_untouched_checklist_journal_verifies_and_is_listed(
    journal: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = verify(capsys)
    assert code == 0, out
    assert f"checklist  ops-{DAY}: ok, 3 records" in out
    seals = [e for e in ledger(workdir) if e["event"] == "journal.sealed"]
    assert [e["records"] for e in seals] == [1, 2, 3]  # one per command that appended
    last = json.loads(lines(journal)[-1])
    assert seals[-1]["journal"] == f"checklists/ops/ops-{DAY}.jsonl"
    assert seals[-1]["kind"] == "checklist" and seals[-1]["last_hash"] == last["hash"]
    assert "signature" not in seals[-1]  # no key configured
    capsys.readouterr()
    assert main(["--json", "audit", "verify"]) == 0
    rows = json.loads(capsys.readouterr().out)["journals"]
    # the check item ran through the engine: its own run log is listed too (issue 12)
    assert [(r["kind"], r["journal"]) for r in rows if r["kind"] != "run"] == [
        ("checklist", f"checklists/ops/ops-{DAY}.jsonl")
    ]


def test_edited_checklist_record_is_named(
    journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal.write_bytes(journal.read_bytes().replace(b'"by":"alice"', b'"by":"mallo"'))
    code, out = verify(capsys)
    assert code == 4
    assert f"checklist  ops-{DAY}: FAILED at record 3" in out and "edited" in out


def test_rewritten_checklist_journal_is_caught_by_the_ledger(
    journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [json.loads(x) for x in lines(journal)]
    records[2]["by"] = "mallory"
    rewrite(journal, records)  # the chain holds again; only the ledger knows
    code, out = verify(capsys)
    assert code == 4 and "FAILED at record 3" in out and "rewritten" in out


def test_deleted_checklist_journal_is_caught_by_the_ledger(
    journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal.unlink()
    code, out = verify(capsys)
    assert code == 4
    assert f"checklists/ops/ops-{DAY}.jsonl: the checklist journal is missing (deleted)" in out


def test_checklist_journal_truncated_by_one_record_is_caught(
    journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal.write_bytes(b"".join(lines(journal)[:-1]))
    code, out = verify(capsys)
    assert code == 4 and "truncated: 2 records left of the 3 the ledger recorded" in out


def test_signed_seals_verify_with_the_key_and_fail_with_another(
    workdir: Path,
    keys: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RUNBOOK_SIGNING_KEY", str(keys[0]))
    make_journal(workdir)
    seals = [e for e in ledger(workdir) if e["event"] == "journal.sealed"]
    signer = signing.load_signer(str(keys[0]))
    assert signer is not None and len(seals) == 3
    for e in seals:
        assert e["key_id"] == signer.key_id
        assert signing.valid(e["public_key"], signed_text(e["event"], e), e["signature"])
    code, out = verify(capsys, "--public-key", str(keys[1]))
    assert code == 0, out
    signing.keygen(workdir / "keys" / "other")
    code, out = verify(capsys, "--public-key", str(workdir / "keys" / "other.pub"))
    assert code == 4 and "checklist journal" in out and "signed by another key" in out


def test_with_a_key_expected_an_appended_sign_off_is_caught(
    workdir: Path,
    keys: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Appending needs no rewrite of the chain: only a signed seal vouches for the last record."""
    monkeypatch.setenv("RUNBOOK_SIGNING_KEY", str(keys[0]))
    path = make_journal(workdir)
    records = [json.loads(x) for x in lines(path)]
    forged = dict(records[-1], by="bob")
    rewrite(path, [*records, forged])
    assert verify(capsys)[0] == 0  # without a key the chain is all there is to check
    code, out = verify(capsys, "--public-key", str(keys[1]))
    assert code == 4 and "FAILED at record 4" in out and "not in a signed ledger entry" in out


def test_unsigned_checklist_journal_fails_when_a_key_is_expected(
    journal: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = verify(capsys, "--public-key", str(keys[1]))
    assert code == 4 and "unsigned, but a signing key was expected" in out


def test_a_bad_signing_key_stops_the_command_before_anything_is_recorded(
    journal: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, sealed = journal.read_bytes(), ledger(workdir)
    monkeypatch.setenv("RUNBOOK_SIGNING_KEY", str(workdir / "no-such-key"))
    assert main(["checklist", "skip", "ops", "restore", "--period", DAY, "--reason", "x"]) == 2
    assert journal.read_bytes() == before and ledger(workdir) == sealed


def test_a_refused_command_seals_nothing(journal: Path, workdir: Path) -> None:
    sealed = ledger(workdir)
    assert main(["checklist", "sign", "ops", "nope", "--period", DAY]) == 2
    assert main(["checklist", "run", "ops", "restore", "--period", DAY]) == 2  # manual item
    assert ledger(workdir) == sealed


def test_runs_alone_for_list_and_verify_run_id(
    journal: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "plain", "runbook: plain\nsteps: [{id: a, run: 'true'}]\n")
    assert main(["run", "plain", "--quiet"]) == 0
    (run,) = (workdir / "state" / "runs").glob("*-plain-*.jsonl")
    runs = sorted(p.stem for p in (workdir / "state" / "runs").glob("*.jsonl"))  # + check items'
    journal.unlink()
    capsys.readouterr()
    assert main(["--json", "audit", "list"]) == 0
    assert sorted(r["run_id"] for r in json.loads(capsys.readouterr().out)) == runs
    code, out = verify(capsys, run.stem)  # a checklist's problem is not this run's
    assert code == 0 and f"run  {run.stem}: ok" in out
    assert verify(capsys)[0] == 4


def test_deleted_plan_approval_is_caught(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_runbook(workdir, "plain", "runbook: plain\nsteps: [{id: a, run: 'true'}]\n")
    assert main(["plan", "plain", "-o", "plain.plan.json"]) == 0
    assert main(["plan", "approve", "plain.plan.json", "--by", "bob"]) == 0
    (approval,) = (workdir / "state" / "approvals").glob("approval-*.jsonl")
    code, out = verify(capsys)
    assert code == 0 and f"approval  {approval.stem}: ok, 1 records" in out
    approval.unlink()
    code, out = verify(capsys)
    assert code == 4 and "the approval journal is missing (deleted)" in out


def test_truncated_emergency_review_is_caught(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(
        workdir, "hotfix", "runbook: hotfix\nchange: emergency\nsteps: [{id: a, run: 'true'}]\n"
    )
    assert main(["run", "hotfix", "--quiet"]) == 0
    (run,) = (workdir / "state" / "runs").glob("*.jsonl")
    assert main(["audit", "review", run.stem, "--by", "carol"]) == 0
    assert main(["audit", "review", run.stem, "--by", "dave"]) == 0
    (review,) = (workdir / "state" / "reviews").glob("*.jsonl")
    review.write_bytes(b"".join(lines(review)[:-1]))
    code, out = verify(capsys)
    assert code == 4 and "truncated: 1 records left of the 2 the ledger recorded" in out


def test_plan_approve_signs_with_the_global_signing_key(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "plain", "runbook: plain\nsteps: [{id: a, run: 'true'}]\n")
    assert main(["audit", "keygen", "--out", str(workdir / "k")]) == 0
    assert main(["plan", "plain", "-o", "plain.plan.json"]) == 0
    key = str(workdir / "k")
    assert main(["--signing-key", key, "plan", "approve", "plain.plan.json", "--by", "bob"]) == 0
    [entry] = [json.loads(x) for x in (workdir / "state" / "ledger.jsonl").read_text().splitlines()]
    assert entry["kind"] == "approval" and entry["signature"]
    capsys.readouterr()
    assert main(["audit", "verify", "--public-key", key + ".pub"]) == 0
