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

import contextlib
import datetime as dt
import getpass
import hashlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
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
            self._size = os.fstat(self._fd).st_size  # what is whole on disk (see _commit)
        except OSError as exc:
            self.close()
            raise StateError(f"cannot open the audit log {path}: {exc.strerror or exc}") from None

    def _resume_chain(self) -> None:
        """Continue the chain from the last line that is a record, read from the end of the file:
        the ledger is reopened twice a run and never rotated, so reading it whole made every run
        slower than the one before."""
        end = os.fstat(self._fd).st_size
        lines = lines_last_first(self._fd, end)
        final = next(lines)  # what follows the last newline
        last = _parsed(final) if final else None
        if final and last is None:
            # a crash mid-write left half a line: cut it, so the chain continues cleanly
            os.ftruncate(self._fd, end - len(final))
        elif final:
            # a whole record whose newline never reached the disk: end its line, or the next
            # record would be written onto it
            os.write(self._fd, b"\n")
        for line in lines:
            if last is not None:
                break
            last = _parsed(line)
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
        """Write whole records and make them durable, or raise StateError. What a refused write
        left (part of a record: disk full, a file size limit) is cut off again, so that records
        written once there is room chain onto the last whole one, and the log still verifies."""
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(28, "short write (disk full?)")
            # appends: the data and the new size are what a reader needs, not the mtime
            getattr(os, "fdatasync", os.fsync)(self._fd)
            self._size += written
        except OSError as exc:
            with contextlib.suppress(OSError):  # shrinking needs no space; if it fails, resume cuts
                os.ftruncate(self._fd, self._size)
            raise StateError(
                f"cannot write the audit log {self.path}: {exc.strerror or exc}; stopping before the next command"
            ) from None

    def sync(self) -> None:
        """Make every record appended so far durable: here each already is (see groupcommit.py)."""

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def lines_last_first(fd: int, end: int, block: int = 1 << 16) -> Iterator[bytes]:
    """The lines of the file's first `end` bytes, last first, read a block at a time from the
    end; the first one is what follows the last newline (b"" when the file ends with one)."""
    pos, carry = end, b""
    while pos > 0:
        size = min(block, pos)
        pos -= size
        parts = (os.pread(fd, size, pos) + carry).split(b"\n")
        carry = parts[0]  # the start of this line may lie in the block before
        yield from reversed(parts[1:])
    yield carry


def _parsed(raw: bytes) -> dict[str, Any] | None:
    """A line's record, or None for a line that is not one (not JSON, or not an object)."""
    try:
        rec = json.loads(raw)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


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
        rec = _parsed(raw)
        yield Line(i, raw, rec, torn=(i == len(lines) and not complete and rec is None))


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
