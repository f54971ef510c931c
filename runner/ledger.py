"""Sealing closed runs, and verifying everything an auditor relies on.

When a run closes, its last hash is (1) signed in a final `run.signature` record of the run's own
log, when a signing key is configured, and (2) appended to `<state>/ledger.jsonl`, a hash-chained
journal of its own whose entries are signed too. The ledger is what catches a run file that was
deleted or truncated: the chain of a truncated file is still a valid chain.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import signing
from runner.audit import Journal, Verdict, list_runs, run_path, verify_run

LEDGER = "ledger"


def ledger_path(state_dir: Path) -> Path:
    return state_dir / f"{LEDGER}.jsonl"


def seal(journal: Journal, state_dir: Path, signer: signing.Signer | None) -> None:
    """Sign the run's closing hash (if a key is configured) and record it in the ledger."""
    if signer is not None:
        closing = journal.last_hash
        journal.append(
            "run.signature",
            {
                "signs": closing,
                "key_id": signer.key_id,
                "public_key": signer.public_b64,
                "signature": signer.sign(closing),
            },
        )
    entry: dict[str, Any] = {
        "run": journal.run_id,
        "records": journal.seq,
        "last_hash": journal.last_hash,
    }
    if signer is not None:
        entry.update(
            key_id=signer.key_id,
            public_key=signer.public_b64,
            signature=signer.sign(journal.last_hash),
        )
    ledger = Journal(ledger_path(state_dir), LEDGER, actor=journal.actor)
    try:
        ledger.append("run.closed", entry)
    finally:
        ledger.close()


@dataclass
class Report:
    verdicts: list[Verdict]
    ledger: list[str]  # problems found through the ledger

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts) and not self.ledger


def _check_signatures(v: Verdict, expected_key: bytes | None) -> None:
    """Applied to a verdict whose chain holds; marks it failed on any signature problem."""
    sigs = [e for e in v.events if e["event"] == "run.signature"]
    if not sigs:
        if expected_key is not None and v.closed:
            _fail(v, v.records, "unsigned, but a signing key was expected")
        return
    last = v.events[-1]
    for s in sigs:
        line = s["seq"]
        if s is not last:
            _fail(v, line + 1, "records were appended after the run's signature")
            return
        prev = v.events[-2] if len(v.events) > 1 else {}
        if s["signs"] != prev.get("hash"):
            _fail(v, line, "the signature does not sign the closing record")
            return
        if not signing.valid(s["public_key"], s["signs"], s["signature"]):
            _fail(
                v, line, "invalid signature (records changed after signing, or a forged signature)"
            )
            return
        if expected_key is not None and base64.b64decode(s["public_key"]) != expected_key:
            _fail(v, line, f"signed by another key ({s['key_id']})")
            return


def _fail(v: Verdict, line: int, reason: str) -> None:
    v.ok, v.status, v.first_bad, v.reason = False, "failed", line, reason


def verify(state_dir: Path, run_id: str | None = None, public_key: str | None = None) -> Report:
    expected = signing.load_public(public_key) if public_key else None
    paths = [run_path(state_dir, run_id)] if run_id else list_runs(state_dir)
    verdicts = [verify_run(p, keep=True) for p in paths if p.exists()]
    for v in verdicts:
        if v.ok:
            _check_signatures(v, expected)
    problems = _check_ledger(state_dir, {v.run_id: v for v in verdicts}, expected, only=run_id)
    return Report(verdicts, problems)


def _check_ledger(
    state_dir: Path, verdicts: dict[str, Verdict], expected: bytes | None, only: str | None
) -> list[str]:
    path = ledger_path(state_dir)
    if not path.exists():
        return []
    lv = verify_run(path, keep=True)
    if not lv.ok:
        return [f"ledger: {lv.line()}"]
    problems = []
    for e in lv.events:
        rid = e["run"]
        if only and rid != only:
            continue
        if "signature" in e and not signing.valid(e["public_key"], e["last_hash"], e["signature"]):
            problems.append(f"ledger record {e['seq']}: invalid signature for run {rid}")
        elif expected is not None and "signature" not in e:
            problems.append(
                f"ledger record {e['seq']}: run {rid} unsigned, but a signing key was expected"
            )
        v = verdicts.get(rid)
        if v is None:
            problems.append(
                f"{rid}: the run's log is missing (deleted); the ledger recorded {e['records']} records"
            )
        elif v.records < e["records"] and v.ok:
            _fail(
                v,
                v.records,
                f"truncated: {v.records} records left of the {e['records']} the ledger recorded",
            )
        elif v.ok and v.events[e["records"] - 1]["hash"] != e["last_hash"]:
            _fail(
                v,
                e["records"],
                "the closing hash differs from the ledger's (the run was rewritten)",
            )
    return problems
