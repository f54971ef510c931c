"""The audit journal: append-only, hash-chained JSON Lines, one file per run (and per checklist
instance, plan approval and review: `list_journals`).

Every record is canonical JSON (sorted keys, no insignificant space, UTF-8) carrying `seq`,
`ts`, `run_id`, `event`, `actor`, `prev` (the previous record's hash) and `hash` (SHA-256 of the
canonical record without `hash`). Each record is written and fsynced before the runner goes on
(a run's journal groups them: one sync before each command, see groupcommit.py); if it cannot
be, the write raises StateError and the engine stops before the next command (fail closed: no
command ever runs unrecorded).

Signatures of closing records and the ledger (ledger.py) sign a journal's last `hash`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runner.errors import StateError

GENESIS = "0" * 64
Kind = Literal["run", "checklist", "approval", "review"]  # the kinds of journal (list_journals)
RESERVED = frozenset({"seq", "ts", "run_id", "event", "actor", "prev", "hash"})


_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical(record: dict[str, Any]) -> bytes:
    return _ENCODE(record).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


def hashed_line(record: dict[str, Any]) -> bytes:
    """Set record["hash"] (record_hash) and return canonical(record), encoding the record once
    instead of twice: canonical JSON is its members in key order, so the keys sorting before
    "hash" and those after are encoded apart, and the hash goes in between."""
    low = _ENCODE({k: v for k, v in record.items() if k < "hash"})[1:-1]
    high = _ENCODE({k: v for k, v in record.items() if k > "hash"})[1:-1]
    body = "{" + ",".join(part for part in (low, high) if part) + "}"
    record["hash"] = hashlib.sha256(body.encode("utf-8")).hexdigest()
    members = (low, f'"hash":"{record["hash"]}"', high)
    return ("{" + ",".join(part for part in members if part) + "}").encode("utf-8")


def now() -> str:
    # 2026-11-29T20:28:55.023451Z (isoformat is twice as fast as strftime)
    return dt.datetime.now(_UTC).isoformat(timespec="microseconds")[:-6] + "Z"


_UTC = dt.timezone.utc


def current_actor() -> dict[str, str]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {"user": user, "host": socket.gethostname()}


def runs_dir(state_dir: Path) -> Path:
    return state_dir / "runs"


def run_path(state_dir: Path, run_id: str) -> Path:
    return runs_dir(state_dir) / f"{run_id}.jsonl"


class Journal:
    """Appends records of one run. Opened once; every `append` is durable when it returns."""

    def __init__(
        self,
        path: Path,
        run_id: str,
        *,
        actor: dict[str, str] | None = None,
        root: Path | None = None,
    ) -> None:
        """`root`: the state dir `path` lies below; no symlink below it is followed (safefs)."""
        from runner.safefs import open_beneath

        self.path = path
        self.run_id = run_id
        self.actor = actor or current_actor()
        self.seq = 0
        self.last_hash = GENESIS
        self._fd, created = open_beneath(root, path, os.O_RDWR | os.O_APPEND)
        try:
            if not created:
                self._resume_chain()
        except OSError as exc:
            self.close()
            raise StateError(f"cannot open the audit log {path}: {exc.strerror or exc}") from None

    def _resume_chain(self) -> None:
        last = None
        data = _read_fd(self._fd)
        for rec in records_of(data):
            if rec.torn:
                # a crash mid-write left half a line: cut it, so the chain continues cleanly
                os.ftruncate(self._fd, data.rfind(b"\n") + 1)
                break
            if rec.record is not None:
                last = rec.record
        if last is not None:
            self.seq = int(last["seq"])
            self.last_hash = str(last["hash"])

    def append(self, event: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
        record: dict[str, Any] = dict(fields or {})
        clash = RESERVED & record.keys()
        if clash:
            raise ValueError(f"reserved audit fields: {sorted(clash)}")
        record.update(
            seq=self.seq + 1,
            ts=now(),
            run_id=self.run_id,
            event=event,
            actor=self.actor,
            prev=self.last_hash,
        )
        self._commit(hashed_line(record) + b"\n")
        self.seq += 1
        self.last_hash = record["hash"]
        return record

    def _commit(self, data: bytes) -> None:
        """Write whole records and make them durable, or raise StateError."""
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(28, "short write (disk full?)")
            # appends: the data and the new size are what a reader needs, not the mtime
            getattr(os, "fdatasync", os.fsync)(self._fd)
        except OSError as exc:
            raise StateError(
                f"cannot write the audit log {self.path}: {exc.strerror or exc}; stopping before the next command"
            ) from None

    def sync(self) -> None:
        """Make every record appended so far durable: here each already is (see groupcommit.py)."""

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _read_fd(fd: int) -> bytes:
    chunks, offset = [], 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


@dataclass
class Line:
    number: int
    raw: bytes
    record: dict[str, Any] | None
    torn: bool = False  # the last line, without its newline and not parseable: a crash mid-write


def read_records(path: Path) -> Iterator[Line]:
    return records_of(path.read_bytes())


def records_of(data: bytes) -> Iterator[Line]:
    lines = data.split(b"\n")
    complete = data.endswith(b"\n")
    if complete:
        lines = lines[:-1]
    for i, raw in enumerate(lines, start=1):
        last = i == len(lines)
        try:
            rec = json.loads(raw)
            if not isinstance(rec, dict):
                rec = None
        except ValueError:
            rec = None
        yield Line(i, raw, rec, torn=(last and not complete and rec is None))


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
        problem = _check_record(line, rec, prev, verdict.records + 1, run_id)
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


def _check_record(line: Line, rec: dict[str, Any] | None, prev: str, seq: int, run_id: str) -> str:
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


def list_runs(state_dir: Path) -> list[Path]:
    d = runs_dir(state_dir)
    return sorted(d.glob("*.jsonl")) if d.is_dir() else []


# Every kind of journal under a state dir, and where its files live. Each file is one chain whose
# run_id is the file's stem; the ledger (state/ledger.jsonl) is not listed: it vouches for these.
KINDS: tuple[Kind, ...] = ("run", "checklist", "approval", "review")
_PATTERNS: dict[Kind, str] = {
    "run": "runs/*.jsonl",
    "checklist": "checklists/*/*.jsonl",
    "approval": "approvals/*.jsonl",
    "review": "reviews/*.jsonl",
}


def list_journals(state_dir: Path, kinds: tuple[Kind, ...] = KINDS) -> list[tuple[Kind, Path]]:
    """(kind, path) of every journal of those kinds, in a stable order (by kind, then path)."""
    return [(kind, p) for kind in kinds for p in sorted(state_dir.glob(_PATTERNS[kind]))]


def relative_name(state_dir: Path, path: Path) -> str:
    """How the ledger names a journal: its path under the state dir, with forward slashes."""
    return path.relative_to(state_dir).as_posix()
