"""Checking a journal's hash chain: every record canonical, hashed, in sequence and linked to
the one before it (journal.py writes them). `verify_run` reads one file; integrity.py checks a
whole state dir with the ledger.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.audit.journal import GENESIS, RESERVED, Kind, Line, read_records


@dataclass
class Verdict:
    run_id: str
    ok: bool
    records: int
    status: str  # "ok" | "incomplete" | "failed"
    reason: str = ""
    first_bad: int | None = None  # line number
    closed: bool = False
    last_hash: str = GENESIS
    events: list[dict[str, Any]] = field(default_factory=list)
    kind: Kind = "run"  # set by whoever found the file (see list_journals)
    journal: str = ""  # the file's path relative to the state dir, when known
    state: str = ""  # a run's lifecycle state (lifecycle.derive), set by integrity.verify

    def line(self) -> str:
        if self.status == "ok":
            if self.kind != "run":  # only a run has a closing record
                note = f" ({self.reason})" if self.reason else ""
                return f"{self.run_id}: ok, {self.records} records{note}"
            state = "closed" if self.closed else "open (no run.finished record)"
            state += f", {self.state}" if self.state else ""
            note = f"; {self.reason}" if self.reason else ""
            return f"{self.run_id}: ok, {self.records} records, {state}{note}"
        if self.status == "incomplete":
            return f"{self.run_id}: incomplete, intact up to record {self.records} ({self.reason})"
        return f"{self.run_id}: FAILED at record {self.first_bad}: {self.reason}"


def verify_run(path: Path, *, keep: bool = False, kind: Kind = "run", journal: str = "") -> Verdict:
    run_id = path.name.removesuffix(".jsonl")
    verdict = Verdict(run_id=run_id, ok=True, records=0, status="ok", kind=kind, journal=journal)
    prev = GENESIS
    for line in read_records(path):
        if line.torn and verdict.closed:  # nothing may follow a closed segment torn
            verdict.ok, verdict.status, verdict.first_bad = False, "failed", line.number
            verdict.reason = "torn data after the run closed (appended, not a crash mid-write)"
            return verdict
        if line.torn:
            verdict.status, verdict.reason = "incomplete", f"line {line.number} is a torn write"
            break
        rec = line.record
        problem = check_record(line, rec, prev, verdict.records + 1, run_id)
        if problem:
            verdict.ok, verdict.status = False, "failed"
            verdict.first_bad, verdict.reason = line.number, problem
            return verdict
        assert rec is not None
        prev = rec["hash"]
        verdict.records += 1
        # a command closes its segment with run.finished, then maybe its signature
        verdict.closed = rec["event"] == "run.finished" or (
            verdict.closed and rec["event"] == "run.signature"
        )
        if keep:
            verdict.events.append(rec)
    verdict.last_hash = prev
    if verdict.records == 0 and verdict.status == "ok":
        verdict.ok, verdict.status, verdict.first_bad = False, "failed", 1
        verdict.reason = "the log is empty"
    return verdict


def check_record(line: Line, rec: dict[str, Any] | None, prev: str, seq: int, run_id: str) -> str:
    if rec is None:
        return "not a JSON object (edited or corrupted)"
    missing = sorted(RESERVED - rec.keys())
    if missing:
        return f"missing fields {missing} (edited)"
    if rec["hash"] != _raw_hash(line.raw, rec["hash"]):
        # the hash covers the exact canonical bytes, so any edit (whitespace too) shows here
        return "hash does not match the content (edited)"
    if rec["run_id"] != run_id:
        return f"belongs to run {rec['run_id']} (moved from another log)"
    if rec["seq"] != seq:
        kind = (
            "deleted"
            if isinstance(rec["seq"], int) and rec["seq"] > seq
            else "reordered or inserted"
        )
        return f"seq {rec['seq']} where {seq} was expected (a record was {kind})"
    if rec["prev"] != prev:
        return "prev does not match the previous record's hash (records deleted, reordered or inserted)"
    return ""


def _raw_hash(raw: bytes, claimed: Any) -> str:
    """SHA-256 of the line without its `hash` field: what `record_hash` computed when writing.

    Keys are sorted and `actor` always precedes `hash`, so the field is `,"hash":"<hex>"` inside
    the line. Hashing the bytes as they are avoids re-serialising each record (3x faster).
    """
    field = b',"hash":' + json.dumps(claimed).encode()
    if raw.count(field) != 1:
        return ""
    return hashlib.sha256(raw.replace(field, b"", 1)).hexdigest()
