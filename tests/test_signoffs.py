"""Checklist sign-offs, emergency reviews and manual confirmations signed with people's own SSH
keys: the policy's sign-off rule gates `checklist complete`, signatures survive export and are
re-verified by `audit verify`, and only a signed review clears an emergency run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import write_runbook
from people import People

from runner.audit import identity
from runner.audit.journal import canonical, record_hash
from runner.cli import main

POLICY = """
allowed_signers: {allowed}
groups:
  ops: [alice@example.com, bob@example.com, carol@example.com]
  leads: [carol@example.com]
checklists:
  - match: ops/inspect
    signoffs: 2
    from: [ops]
reviews: {{from: [leads]}}
"""
CHECKLIST = """
checklist: ops
title: Ops
period: once
items:
  - id: inspect
    title: Inspect the dashboards
"""


@pytest.fixture
def project(workdir: Path, people: People) -> Path:
    (workdir / "policy.yaml").write_text(POLICY.format(allowed=people.allowed))
    (workdir / "checklists").mkdir()
    (workdir / "checklists" / "ops.yaml").write_text(CHECKLIST)
    return workdir


def _as(people: People, who: str, *args: str) -> int:
    return main(["--ssh-key", people.key(who), *args])


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _rewrite(path: Path, records: list[dict[str, Any]]) -> None:
    """Re-chain the records (what whoever can write the state dir can do)."""
    prev = "0" * 64
    for r in records:
        r["prev"] = prev
        r["hash"] = prev = record_hash(r)
    path.write_bytes(b"".join(canonical(r) + b"\n" for r in records))


def test_sign_offs_by_two_of_the_group_complete_the_checklist_and_verify_after_export(
    project: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    period = ["--period", "INC-1"]
    assert main(["checklist", "start", "ops", *period, "--by", "alice"]) == 0
    assert _as(people, "alice", "checklist", "sign", "ops", "inspect", *period) == 0
    assert "signed by alice@example.com (signed)" in capsys.readouterr().out
    assert main(["checklist", "complete", "ops", *period, "--by", "bob"]) == 2
    err = capsys.readouterr().err
    assert "inspect needs 2 signed from ops (have 1: alice@example.com)" in err
    # a typed name does not count, and the policy does not accept it anyway
    assert main(["checklist", "sign", "ops", "inspect", *period, "--by", "bob@example.com"]) == 2
    assert "the policy requires a signature" in capsys.readouterr().err
    assert _as(people, "stranger", "checklist", "sign", "ops", "inspect", *period) == 2
    assert _as(people, "carol", "checklist", "sign", "ops", "inspect", *period) == 0  # via agent
    assert _as(people, "bob", "checklist", "complete", "ops", *period) == 0
    assert "completed by bob@example.com (signed)" in capsys.readouterr().out

    # the export carries each signature whole: anyone with the allowed signers re-verifies it
    assert main(["checklist", "status", "ops", *period, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (item,) = doc["items"]
    assert [s["by"] for s in item["signatures"]] == ["alice@example.com", "carol@example.com"]
    for sig in item["signatures"]:
        checked = identity.check(sig, people.allowed)  # as exported
        assert sig["signed"] and checked.signed and checked.ok
    forged = {**item["signatures"][1], "note": "all fine"}
    assert not identity.check(forged, people.allowed).ok
    assert main(["audit", "verify"]) == 0

    # edit carol's sign-off, re-chain the journal and the ledger: only her signature tells
    journal = project / "state" / "checklists" / "ops" / "ops-INC-1.jsonl"
    records = _lines(journal)
    records[2]["evidence_sha256"] = "0" * 64
    _rewrite(journal, records)
    ledger = project / "state" / "ledger.jsonl"
    entries = _lines(ledger)
    for e in entries:
        if e.get("journal") == "checklists/ops/ops-INC-1.jsonl":
            e["last_hash"] = records[e["records"] - 1]["hash"]
    _rewrite(ledger, entries)
    capsys.readouterr()
    assert main(["audit", "verify"]) == 4
    out = capsys.readouterr().out
    assert "record 3: the signature of carol@example.com: not a valid signature" in out


EMERGENCY = """
runbook: hotfix
change: emergency
steps:
  - id: fix
    run: touch fixed
"""


def test_an_emergency_run_needs_a_signed_review_by_the_policys_reviewers(
    project: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(project, "hotfix", EMERGENCY)
    assert main(["run", "hotfix"]) == 0
    (run_id,) = [p.stem for p in (project / "state" / "runs").glob("*.jsonl")]
    capsys.readouterr()

    def waiting() -> bool:
        capsys.readouterr()
        assert main(["audit", "list", "--needs-review"]) == 0
        return run_id in capsys.readouterr().out

    assert waiting()
    assert main(["audit", "review", run_id, "--by", "carol@example.com"]) == 2  # unsigned
    assert _as(people, "bob", "audit", "review", run_id) == 2
    assert "bob@example.com is not among the policy's reviewers (leads)" in capsys.readouterr().err
    assert waiting()
    assert _as(people, "carol", "audit", "review", run_id, "--note", "ok") == 0
    assert not waiting()
    assert main(["audit", "verify"]) == 0
    capsys.readouterr()
    assert main(["audit", "show", run_id]) == 0
    assert "reviewed: by carol@example.com (signed)" in capsys.readouterr().out
    assert main(["--json", "audit", "list"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["reviewed_by"] == ["carol@example.com (signed)"] and not row["needs_review"]
    # an auditor elsewhere, without the policy: told what could not be checked, or given the file
    (project / "policy.yaml").unlink()
    assert main(["audit", "verify"]) == 0
    assert "1 signature(s) not checked: no allowed-signers file" in capsys.readouterr().out
    assert main(["audit", "verify", "--allowed-signers", str(people.allowed)]) == 0
    assert "not checked" not in capsys.readouterr().out


def test_a_review_that_does_not_count_leaves_the_run_in_needs_review(
    project: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    """Written under a laxer policy file, by the run's own operator, or appended by hand: the
    readers judge every review under the policy they have, not the one it was written under."""
    write_runbook(project, "hotfix", EMERGENCY)
    assert main(["run", "hotfix", "--operator", "carol@example.com"]) == 0
    (run_id,) = [p.stem for p in (project / "state" / "runs").glob("*.jsonl")]
    assert _as(people, "carol", "audit", "review", run_id) == 2  # her own change
    assert "carol@example.com ran the change" in capsys.readouterr().err

    (project / "lax.yaml").write_text(f"allowed_signers: {people.allowed}\n")
    policy = project / "policy.yaml"
    strict = policy.read_text()
    policy.write_text((project / "lax.yaml").read_text())
    assert _as(people, "bob", "audit", "review", run_id, "--note", "lgtm") == 0
    policy.write_text(strict)

    review = project / "state" / "reviews" / f"review-{run_id}.jsonl"
    records = _lines(review)
    forged = dict(records[0], seq=2)  # replayed by hand: bob's signature still verifies
    _rewrite(review, [*records, forged])

    capsys.readouterr()
    assert main(["audit", "list", "--needs-review"]) == 0
    assert run_id in capsys.readouterr().out
    assert main(["audit", "show", run_id]) == 0
    out = capsys.readouterr().out
    assert "DOES NOT COUNT: bob@example.com is not among the policy's reviewers" in out
    assert "DOES NOT COUNT: not vouched for by the ledger" in out
    assert main(["audit", "report", "--format", "md", "-o", str(project / "r.md")]) == 0
    text = (project / "r.md").read_text()
    assert "NOT REVIEWED" in text or "DOES NOT COUNT" in text


MANUAL = """
runbook: dns
steps:
  - id: prep
    run: echo prep >> trail
  - id: approve-dns
    manual: Update the DNS record at the registrar.
  - id: after
    run: echo after >> trail
"""


@pytest.mark.usefixtures("no_tty")
def test_a_manual_confirmation_is_signed_and_reverified(
    project: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(project, "dns", MANUAL)
    assert main(["run", "dns"]) == 5
    (log,) = (project / "state" / "runs").glob("*.jsonl")
    rid = log.stem
    assert _as(people, "stranger", "resume", rid, "--confirm", "approve-dns") == 2
    assert _as(people, "carol", "resume", rid, "--confirm", "approve-dns") == 0
    (resumed,) = [e for e in _lines(log) if e["event"] == "run.resumed"]
    (confirmation,) = resumed["confirmed"]
    assert confirmation["by"] == "carol@example.com" and confirmation["run"] == rid
    assert identity.check(confirmation, people.allowed).ok
    # the same signature moved to another step does not verify
    assert not identity.check({**confirmation, "step": "after"}, people.allowed).ok
    assert main(["audit", "verify"]) == 0
    capsys.readouterr()
    assert main(["audit", "show", rid]) == 0
    assert "approve-dns on local by carol@example.com (signed)" in capsys.readouterr().out


@pytest.mark.usefixtures("no_tty")
def test_a_signed_confirmation_that_masking_would_break_is_refused(
    project: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "params:\n  token: {type: string, secret: true, required: true}\n"
    write_runbook(project, "dns", MANUAL.replace("steps:", secret + "steps:", 1))
    assert main(["run", "dns", "-p", "token=carol@example.com"]) == 5
    (log,) = (project / "state" / "runs").glob("*.jsonl")
    before = log.read_bytes()
    resume = ["resume", log.stem, "--confirm", "approve-dns", "-p", "token=carol@example.com"]
    assert _as(people, "carol", *resume) == 2
    assert "masking it would break the signature" in capsys.readouterr().err
    assert log.read_bytes() == before  # nothing recorded
