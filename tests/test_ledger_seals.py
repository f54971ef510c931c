"""Which records of a checklist, approval or review journal the ledger vouches for is asked by
every checklist command, `run --plan --require-approval` and the audit report (once per
journal). It used to verify the whole ledger each time, which grows by two entries a run for
ever. Now a process verifies it once, and the next process only what was appended since,
continuing from a checkpoint record it checks is still there; `audit verify` still reads all.
Real journals and seals (ledger.appending), a real cache directory."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from conftest import io_so_far

from runner.audit import integrity, ledgerseals
from runner.audit.chain import verify_run
from runner.audit.ledger import appending, ledger_path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from history import ledger as long_ledger


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    d = tmp_path / "state"
    d.mkdir(mode=0o700)
    return d


def approve(state: Path, name: str, by: str) -> Path:
    """A record appended to an approvals journal and sealed, as `plan approve` does."""
    path = state / "approvals" / f"approval-{name}.jsonl"
    with appending(path, "approval", state) as journal:
        journal.append("plan.approved", {"by": by})
    return path


def full(state: Path, path: Path) -> set[int]:
    """The oracle: vouched as before, from the whole ledger verified now."""
    v = verify_run(path, keep=True)
    seals, _ = integrity.read_ledger(state)
    name = path.relative_to(state).as_posix()
    return integrity.covered(v, [s for s in seals if s.journal == name], None)


def fast(state: Path, path: Path) -> set[int]:
    ledgerseals.forget()  # as a new process would: only the disk cache is left
    return integrity.vouched(state, path, verify_run(path, keep=True))


def test_after_the_first_look_only_what_was_appended_is_read(state: Path) -> None:
    ledger_path(state).write_bytes(long_ledger(20_000))
    path = approve(state, "a", "alice")
    assert fast(state, path) == {1}
    approve(state, "a", "bob")
    before = io_so_far("rchar")
    assert fast(state, path) == {1, 2}
    read = io_so_far("rchar") - before
    assert read < 256 << 10, (
        f"read {read} bytes of a {ledger_path(state).stat().st_size}-byte ledger"
    )


def test_agrees_with_the_whole_ledger_verified(state: Path) -> None:
    """Random approvals on a few journals, asked about in between; the ledger also torn at its
    end now and then (a crash mid-write, cut by the next writer)."""
    rnd = random.Random(15)
    paths: dict[str, Path] = {}
    for step in range(80):
        name = rnd.choice("abcd")
        paths[name] = approve(state, name, f"p{step}")
        if rnd.random() < 0.1:
            with ledger_path(state).open("ab") as f:
                f.write(b'{"seq": 99, "torn')
            assert all(fast(state, p) == full(state, p) for p in paths.values())
            approve(state, name, f"q{step}")  # cuts the torn line
        for p in paths.values():
            assert fast(state, p) == full(state, p), step


def test_an_edit_after_the_checkpoint_vouches_for_nothing(state: Path) -> None:
    path = approve(state, "a", "alice")
    assert fast(state, path) == {1}
    approve(state, "a", "bob")
    lines = ledger_path(state).read_bytes().splitlines(keepends=True)
    lines[-1] = lines[-1].replace(b'"records":2', b'"records":3')
    ledger_path(state).write_bytes(b"".join(lines))
    assert fast(state, path) == set() == full(state, path)


def test_an_edit_of_the_checkpoint_itself_or_a_shorter_ledger_starts_over(state: Path) -> None:
    path = approve(state, "a", "alice")
    approve(state, "b", "bob")
    assert fast(state, path) == {1}
    ledger = ledger_path(state)
    lines = ledger.read_bytes().splitlines(keepends=True)
    # the checkpoint (the last entry) edited: everything is verified again, and fails
    ledger.write_bytes(b"".join(lines[:-1]) + lines[-1].replace(b'"records":1', b'"records":5'))
    assert fast(state, path) == set() == full(state, path)
    # a shorter ledger (the last entry dropped): verified again from the start, and it holds
    ledger.write_bytes(b"".join(lines[:-1]))
    assert fast(state, path) == {1} == full(state, path)
