"""Anchors: a checkpoint of the ledger's head proves that no entry it covered was dropped or
rewritten, even by someone who can rewrite the whole state dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_runbook
from people import People

from runner.audit.journal import canonical, record_hash
from runner.cli import main

RUNBOOK = "runbook: tick\nsteps:\n  - id: tick\n    run: echo tick >> ticks\n"


@pytest.fixture
def two_runs(workdir: Path) -> Path:
    write_runbook(workdir, "tick", RUNBOOK)
    assert main(["audit", "keygen", "--out", str(workdir / "k")]) == 0
    for _ in range(2):
        assert main(["--signing-key", "k", "run", "tick"]) == 0
    return workdir / "state"


def _ledger(state: Path) -> list[str]:
    return (state / "ledger.jsonl").read_text().splitlines(keepends=True)


def test_dropping_the_ledgers_last_entries_is_detected_only_with_the_checkpoint(
    two_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--signing-key", "k", "audit", "checkpoint", "-o", "cp.json"]) == 0
    assert "ledger of 4 records" in capsys.readouterr().out  # each run: opened, closed
    assert main(["--signing-key", "k", "run", "tick"]) == 0  # later entries are fine
    assert main(["audit", "verify", "--checkpoint", "cp.json", "--public-key", "k.pub"]) == 0
    # whoever owns the state dir removes the last two runs and their ledger entries
    entries = _ledger(two_runs)
    for run in {json.loads(line)["run"] for line in entries[2:]}:
        (two_runs / "runs" / f"{run}.jsonl").unlink()
    (two_runs / "ledger.jsonl").write_text("".join(entries[:2]))
    capsys.readouterr()
    assert main(["audit", "verify", "--public-key", "k.pub"]) == 0  # a shorter chain is a chain
    assert main(["audit", "verify", "--checkpoint", "cp.json"]) == 4
    out = capsys.readouterr().out
    assert "the ledger has 2 records, the checkpoint covered 4: entries 3-4 were dropped" in out


def test_a_rewritten_ledger_or_an_edited_checkpoint_is_detected(
    two_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--signing-key", "k", "audit", "checkpoint", "-o", "cp.json"]) == 0
    records = [json.loads(x) for x in _ledger(two_runs)]
    records[-1]["records"] = 1  # the second run "had" fewer records, chain recomputed
    records[-1]["hash"] = record_hash(records[-1])
    (two_runs / "ledger.jsonl").write_bytes(b"".join(canonical(r) + b"\n" for r in records))
    capsys.readouterr()
    assert main(["audit", "verify", "--checkpoint", "cp.json"]) == 4
    assert "ledger record 4 differs from the checkpoint's" in capsys.readouterr().out
    # moving the checkpoint back to cover less needs its signature: the edit is detected
    doc = json.loads(Path("cp.json").read_text())
    doc.update(records=1, last_hash=records[0]["hash"])
    Path("cp.json").write_text(json.dumps(doc))
    assert main(["audit", "verify", "--checkpoint", "cp.json"]) == 4
    assert "invalid signature (the checkpoint was edited" in capsys.readouterr().out


def test_a_person_signs_a_checkpoint_with_their_ssh_key(
    two_runs: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("policy.yaml").write_text(f"allowed_signers: {people.allowed}\n")
    assert main(["--ssh-key", people.key("carol"), "audit", "checkpoint", "-o", "cp.json"]) == 0
    assert "by carol@example.com (signed)" in capsys.readouterr().out
    assert main(["audit", "verify", "--checkpoint", "cp.json"]) == 0
    doc = json.loads(Path("cp.json").read_text())
    doc["by"] = "alice@example.com"
    Path("cp.json").write_text(json.dumps(doc))
    assert main(["audit", "verify", "--checkpoint", "cp.json"]) == 4
    assert "the signature of alice@example.com" in capsys.readouterr().out
