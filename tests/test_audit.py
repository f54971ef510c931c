"""The hash-chained journal: a clean log verifies; each kind of tampering is detected and named."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import write_runbook

from runner.audit.journal import canonical, hashed_line, record_hash
from runner.cli import main


@pytest.fixture
def log(workdir: Path) -> Path:
    write_runbook(
        workdir,
        "three",
        """
runbook: three
params: {token: {type: string, secret: true, default: null}}
steps:
  - {id: a, run: echo a}
  - {id: b, run: echo b}
  - {id: c, run: echo c}
""".replace("default: null", "required: false"),
    )
    assert main(["run", "three", "-p", "token=zzz-secret"]) == 0
    (path,) = (workdir / "state" / "runs").glob("*.jsonl")
    return path


def verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["audit", "verify"])
    return code, capsys.readouterr().out


def test_clean_log_verifies_and_is_canonical(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = verify(capsys)
    assert code == 0 and ": ok," in out and "closed" in out
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    started = records[0]
    assert started["event"] == "run.started" and started["params"]["token"] == "***"
    assert len(started["runbook_sha256"]) == 64 and started["tool_version"]
    for r in records:
        assert set(r) >= {"seq", "ts", "run_id", "event", "actor", "prev", "hash"}
    assert b"zzz-secret" not in log.read_bytes()


def test_a_line_encoded_once_is_the_canonical_record_with_its_hash() -> None:
    """Journal.append encodes a record once (hashed_line), not once to hash and once to write:
    the bytes and the hash must be those of canonical() and record_hash(), whatever the keys."""
    rnd = random.Random(15)
    keys = ["hash", "has", "hasha", "h", "i", "", "Hash", "seq", "actor", "é", "zz", "😀"]

    def value(depth: int) -> object:
        kind = rnd.randrange(7 if depth < 3 else 5)
        choices: list[object] = [
            rnd.randrange(-(10**9), 10**9),
            rnd.random() * 1e6,
            "".join(rnd.choice('ab"\\\n\x00\u2028é😀') for _ in range(rnd.randrange(9))),
            rnd.choice([True, False, None, float("nan")]),
            [],
        ]
        if kind < 5:
            return choices[kind]
        if kind == 5:
            return [value(depth + 1) for _ in range(rnd.randrange(4))]
        return {rnd.choice(keys): value(depth + 1) for _ in range(rnd.randrange(4))}

    for _ in range(3000):
        record = {rnd.choice(keys): value(0) for _ in range(rnd.randrange(10))}
        record.pop("hash", None)
        line = hashed_line(mine := dict(record))
        expected = {**record, "hash": record_hash(record)}
        assert (line, mine) == (canonical(expected), expected)


def test_one_byte_edit_is_detected(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray(log.read_bytes())
    lines = data.split(b"\n")
    target = sum(len(x) + 1 for x in lines[:3]) + lines[3].index(b'"echo ') + 6  # inside record 4
    data[target] = ord("X") if data[target] != ord("X") else ord("Y")
    log.write_bytes(bytes(data))
    code, out = verify(capsys)
    assert code == 4
    assert "FAILED at record 4" in out and "edited" in out


def test_torn_line_of_a_sealed_run_is_truncation(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log.write_bytes(log.read_bytes()[:-40])
    code, out = verify(capsys)
    assert code == 4 and "truncated" in out


def test_deleted_record_is_detected(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:2] + lines[3:]))
    code, out = verify(capsys)
    assert code == 4 and "FAILED at record 3" in out and "deleted" in out


def test_swapped_records_are_detected(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = log.read_bytes().splitlines(keepends=True)
    lines[2], lines[3] = lines[3], lines[2]
    log.write_bytes(b"".join(lines))
    code, out = verify(capsys)
    assert code == 4 and "FAILED at record 3" in out


def test_rehashed_edit_breaks_the_chain(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Recomputing the edited record's own hash is not enough: the next record's prev no longer holds."""
    lines = log.read_text().splitlines()
    rec = json.loads(lines[2])
    rec["command"] = "echo innocent"
    rec["hash"] = record_hash(rec)
    lines[2] = canonical(rec).decode()
    log.write_text("\n".join(lines) + "\n")
    code, out = verify(capsys)
    assert code == 4 and "FAILED at record 4" in out and "prev" in out


def test_torn_last_line_is_reported_as_incomplete(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = log.read_bytes()
    log.write_bytes(data[:-40])  # a crash in the middle of the last write...
    ledger = log.parent.parent / "ledger.jsonl"  # ...so the run's closing entry was never written
    ledger.write_bytes(b"".join(ledger.read_bytes().splitlines(keepends=True)[:-1]))
    code, out = verify(capsys)
    assert "incomplete, intact up to record" in out
    assert code == 0
