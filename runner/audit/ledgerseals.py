"""The ledger's entries as seals, and the seals of sealed journals without reading the whole
ledger every time.

Which records of a checklist, approval or review journal the ledger vouches for is asked by
every checklist command, `run --plan --require-approval` and the audit report (once per
journal); the ledger grows by two entries a run and is never rotated. So `journal_seals` verifies
it once per process, and a later process only what was appended since: it keeps, in the user's
cache (diskcache.py, read only from a private folder), the journal seals verified so far and the
last entry they were verified up to (its offset, seq and hash), and continues the chain from
there after checking that entry is still in place, unchanged. A ledger that is shorter, replaced
or changed at that entry is verified from its start again. An entry edited before it goes
unnoticed here (the seals verified then are used, as they were), never by `audit verify`, which
always verifies every entry (integrity.read_ledger).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.audit.chain import check_record
from runner.audit.journal import GENESIS, KINDS, Kind, lines_last_first, records_of
from runner.audit.ledger import LEDGER, RUN_CLOSED, RUN_OPENED, SEALED, ledger_path
from runner.format import diskcache

AREA = "ledger-seals"


@dataclass(frozen=True)
class Seal:
    """A ledger entry of either type: the journal at `journal` had `records` records then."""

    seq: int  # the ledger record's
    journal: str  # path relative to the state dir
    kind: Kind
    name: str  # how problems name the journal: a run's id, else its path
    records: int
    last_hash: str
    entry: dict[str, Any]
    first: int = 1  # the first record it vouches for (older entries: all from the first)

    @property
    def label(self) -> str:
        return f"run {self.name}" if self.kind == "run" else f"{self.kind} journal {self.name}"


def seal_of(e: dict[str, Any]) -> Seal | None:
    """The entry as a Seal, or None when a field an auditor relies on is missing or mistyped."""
    run = e["event"] in (RUN_OPENED, RUN_CLOSED)  # a run is named by its id
    name = e.get("run") if run else e.get("journal")
    kind = "run" if run else e.get("kind")
    records, last_hash, first = e.get("records"), e.get("last_hash"), e.get("first", 1)
    sig_fields = [e.get(k) for k in ("public_key", "signature", "key_id")]
    if (
        not isinstance(name, str)
        or kind not in KINDS
        or not isinstance(records, int)
        or not isinstance(first, int)
        or not 1 <= first <= records
        or not isinstance(last_hash, str)
        or ("signature" in e and not all(isinstance(x, str) for x in sig_fields))
    ):
        return None
    journal = f"runs/{name}.jsonl" if run else name
    return Seal(e["seq"], journal, kind, name, records, last_hash, e, first)


@dataclass
class _Verified:
    offset: int  # the ledger's bytes verified: up to the end of the entry `seq`
    seq: int
    hash: str
    entries: list[dict[str, Any]]  # the journal seals (`journal.sealed`) among them


_memo: dict[tuple[str, int, int, int], list[Seal]] = {}


def forget() -> None:
    """Drop what this process verified (as a new process starts: only the cache is left)."""
    _memo.clear()


def _memo_key(path: Path, st: os.stat_result) -> tuple[str, int, int, int]:
    return os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns


def remember(path: Path, st: os.stat_result, entries: list[dict[str, Any]]) -> None:
    """Journal seals (`journal.sealed` entries) just verified with every entry of the ledger at
    `path`, as it was (`st`) before it was read: used while the file stays so."""
    key = _memo_key(path, st)
    if _memo_key(path, os.stat(path)) == key:
        _memo[key] = [s for e in entries if (s := seal_of(e)) is not None]


def journal_seals(state_dir: Path) -> list[Seal]:
    """The seals of checklist, approval and review journals in a ledger whose entries all
    verify; none when it does not (a command then vouches for nothing, as before)."""
    path = ledger_path(state_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    try:
        st = os.fstat(fd)
        memo = _memo_key(path, st)
        if memo in _memo:
            return _memo[memo]
        key = diskcache.key(AREA, memo[0], str(st.st_dev), str(st.st_ino), diskcache.code(__file__))
        start = _cached(key, fd, st.st_size) or _Verified(0, 0, GENESIS, [])
        done = _continue(fd, st.st_size, start)
    finally:
        os.close(fd)
    if done is None:
        return []
    if done.offset != start.offset:
        payload = {"offset": done.offset, "seq": done.seq, "hash": done.hash}
        diskcache.write_bytes(AREA, key, json.dumps({**payload, "seals": done.entries}).encode())
    seals = [s for e in done.entries if (s := seal_of(e)) is not None]
    _memo[memo] = seals
    return seals


def _cached(key: str, fd: int, size: int) -> _Verified | None:
    """What the cache says was verified, if the entry it ends with is still where it was."""
    raw = diskcache.read_bytes(AREA, key, private=True)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        cached = _Verified(data["offset"], data["seq"], data["hash"], data["seals"])
    except (ValueError, TypeError, KeyError):
        return None
    if not 0 < cached.offset <= size:
        return None
    lines = lines_last_first(fd, cached.offset)
    if next(lines) != b"":  # the offset must fall just after a newline
        return None
    (line,) = records_of(next(lines, b"") + b"\n")
    rec = line.record
    if rec is None or rec.get("seq") != cached.seq or rec.get("hash") != cached.hash:
        return None
    if check_record(line, rec, str(rec.get("prev")), cached.seq, LEDGER):
        return None
    return cached


def _continue(fd: int, size: int, start: _Verified) -> _Verified | None:
    """The chain checked on from `start` to the last whole line; None if an entry fails."""
    data = os.pread(fd, size - start.offset, start.offset)
    whole = data[: data.rfind(b"\n") + 1]  # a torn last line: a write under way, or a crash
    done = _Verified(start.offset, start.seq, start.hash, list(start.entries))
    for line in records_of(whole) if whole else ():
        rec = line.record
        if check_record(line, rec, done.hash, done.seq + 1, LEDGER):
            return None
        assert rec is not None
        done.offset += len(line.raw) + 1
        done.seq, done.hash = rec["seq"], rec["hash"]
        if rec["event"] == SEALED:
            done.entries.append(rec)
    return done
