"""Reopening a journal to append (the ledger at every run's start and seal, a resumed run, a
checklist) finds the last record from the end of the file, and reads only that end: a ledger
grows by two entries a run and is never rotated."""

from __future__ import annotations

import json
import random
from pathlib import Path

from conftest import io_so_far

from runner.audit.journal import GENESIS, Journal, hashed_line, records_of


def chained(n: int, run_id: str = "ledger", pad: int = 0, seed: int = 0) -> list[bytes]:
    """n records chained as Journal.append chains them (without a sync each); `pad`: the size of
    an extra field, to make long lines."""
    rnd = random.Random(seed)
    lines, prev = [], GENESIS
    for seq in range(1, n + 1):
        record = {
            "seq": seq,
            "ts": "2026-11-29T00:00:00.000000Z",
            "run_id": run_id,
            "event": "run.closed",
            "actor": {"user": "ops", "host": "h"},
            "prev": prev,
            "note": "x" * rnd.randint(0, pad),
        }
        lines.append(hashed_line(record))
        prev = record["hash"]
    return lines


def test_reopening_a_long_ledger_reads_its_end_only(tmp_path: Path) -> None:
    lines = chained(20_000)
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    size = path.stat().st_size
    assert size > 4 << 20

    before = io_so_far("rchar")
    journal = Journal(path, "ledger", root=tmp_path)
    read = io_so_far("rchar") - before
    last = json.loads(lines[-1])
    assert (journal.seq, journal.last_hash) == (20_000, last["hash"])
    assert read < 256 << 10, f"read {read} bytes of a {size}-byte ledger to reopen it"

    journal.append("run.opened", {"run": "r"})
    journal.close()
    tail = [line.record for line in records_of(path.read_bytes())][-2:]
    assert tail[1] is not None and tail[1]["prev"] == last["hash"] and tail[1]["seq"] == 20_001


def expected_after_reopening(data: bytes) -> tuple[bytes, int, str]:
    """What reopening must leave and continue from, worked out from the front (records_of):
    a torn last line is cut; a last line that is a whole record without its newline gets one
    (else the next record would be written onto the same line); the chain continues from the
    last line that is a record."""
    lines = list(records_of(data))
    if lines and lines[-1].torn:
        data = data[: data.rfind(b"\n") + 1]
    elif data and not data.endswith(b"\n"):
        data += b"\n"
    records = [line.record for line in records_of(data) if line.record is not None]
    if not records:
        return data, 0, GENESIS
    return data, int(records[-1]["seq"]), str(records[-1]["hash"])


def test_reopening_agrees_with_reading_from_the_front(tmp_path: Path) -> None:
    """Files of every shape a crash or a hand could leave: lines longer than one read from the
    end, garbage and JSON that is not a record after the last record, a torn last line (short,
    or longer than a read), a whole last record without its newline, an empty file."""
    rnd = random.Random(6)
    endings: list[bytes] = [
        b"",
        b'{"seq": 9, "tor',
        b'{"torn": "' + b"y" * 150_000,
        b"not json at all\n",
        b"[1, 2, 3]\n",
        b"\n\n",
    ]
    for case in range(60):
        n = rnd.choice([0, 1, 2, 5, 40])
        lines = chained(n, pad=rnd.choice([0, 300, 90_000]), seed=case)
        data = b"".join(line + b"\n" for line in lines)
        data += rnd.choice(endings)
        if lines and rnd.random() < 0.2:
            data = data.rstrip(b"\n")  # the last record's newline never reached the disk
            if not data.endswith(b"}"):
                continue
        path = tmp_path / f"case-{case}.jsonl"
        path.write_bytes(data)
        want_data, want_seq, want_hash = expected_after_reopening(data)

        journal = Journal(path, "ledger", root=tmp_path)
        assert (journal.seq, journal.last_hash) == (want_seq, want_hash), case
        journal.close()
        assert path.read_bytes() == want_data, case
