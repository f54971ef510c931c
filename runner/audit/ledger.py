"""Sealing journals in the ledger (integrity.py verifies them against it).

When a run closes, its last hash is (1) signed in a final `run.signature` record of the run's own
log, when a signing key is configured, and (2) appended to `<state>/ledger.jsonl`, a hash-chained
journal of its own whose entries are signed too (`run.closed`). Checklist, approval and review
journals are sealed the same way each time a command has appended to them (`journal.sealed`); their
only signature is the ledger entry's. The ledger is what catches a journal that was deleted or
truncated: the chain of a truncated file is still a valid chain.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runner.audit import signing
from runner.audit.journal import (
    RESERVED,
    Journal,
    Kind,
    canonical,
    current_actor,
    now,
    relative_name,
)
from runner.safefs import open_beneath

LEDGER = "ledger"
RUN_OPENED = "run.opened"
RUN_CLOSED = "run.closed"
SEALED = "journal.sealed"


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
    entry = {"run": journal.run_id, "records": journal.seq, "last_hash": journal.last_hash}
    _enter(state_dir, RUN_CLOSED, entry, journal, signer)


def opened(journal: Journal, state_dir: Path, signer: signing.Signer | None, first: int) -> None:
    """Enter a run in the ledger as soon as it has its first record (or a resumed run its first new
    one): from then on a run is accounted for, so a run log the ledger never heard of was
    fabricated, and one cut short with its closing entry dropped still has its opening entry."""
    entry = {"run": journal.run_id, "first": first, "records": journal.seq}
    _enter(state_dir, RUN_OPENED, {**entry, "last_hash": journal.last_hash}, journal, signer)


def seal_journal(
    journal: Journal, state_dir: Path, kind: Kind, signer: signing.Signer | None, first: int = 1
) -> None:
    """Record a checklist, approval or review journal's length and last hash in the ledger, and
    which records this command appended (`first`..`records`): a seal vouches for those only, so
    a record slipped in by hand before it is not vouched for by the next command's seal."""
    entry = {
        "journal": relative_name(state_dir, journal.path),
        "kind": kind,
        "first": first,
        "records": journal.seq,
        "last_hash": journal.last_hash,
    }
    _enter(state_dir, SEALED, entry, journal, signer)


@contextmanager
def appending(
    path: Path, kind: Kind, state_dir: Path, signing_key: str | None = None
) -> Iterator[Journal]:
    """A checklist, approval or review journal opened to append, sealed when it is closed.

    The key (`signing_key`, else RUNBOOK_SIGNING_KEY) is loaded first, so that a bad one stops the
    command before anything is recorded. A command that appended nothing (a refusal) seals nothing.
    From before the journal is opened until its seal is written, the command holds the journal's
    lock (`journal_lock`): two people approving one plan, or signing one checklist, at the same
    moment would otherwise both chain onto the same last record, and the journal would no longer
    verify. What the caller reads of the journal inside is what it appends to.
    """
    signer = signing.load_signer(signing_key)
    with journal_lock(path, state_dir):
        journal = Journal(
            path, path.stem, root=state_dir
        )  # the verifier ties a journal's run_id to its file name
        before = journal.seq
        try:
            yield journal
        finally:
            try:
                if journal.seq != before:
                    seal_journal(journal, state_dir, kind, signer, first=before + 1)
            finally:
                journal.close()


@contextmanager
def journal_lock(path: Path, state_dir: Path) -> Iterator[None]:
    """An exclusive flock on `<journal>.lock` beside the journal: one appender at a time.

    The holder writes who it is in the lock file. A command that finds the journal held (a
    `checklist run` holds its instance while its runbooks run: minutes, a prompt maybe) says on
    stderr who holds it and since when, then waits: never a silent hang."""
    fd, _ = open_beneath(state_dir, path.with_suffix(".lock"), os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another command"
            print(f"runbook: {path.name} is being written by {held}; waiting", file=sys.stderr)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        me = f"pid {os.getpid()} ({current_actor()['user']}, since {now()})\n"
        os.pwrite(fd, me.encode(), 0)
        yield
    finally:
        os.close(fd)


def _enter(
    state_dir: Path,
    event: str,
    entry: dict[str, Any],
    journal: Journal,
    signer: signing.Signer | None,
) -> None:
    with locked(state_dir):
        ledger = Journal(ledger_path(state_dir), LEDGER, actor=journal.actor, root=state_dir)
        try:
            # the entry names the one before it, under its signature: an entry dropped from the
            # middle of the ledger (with its run) breaks the next signed entry, re-chained or not
            entry["ledger_prev"] = ledger.last_hash
            if signer is not None:
                entry.update(key_id=signer.key_id, public_key=signer.public_b64)
                entry["signature"] = signer.sign(signed_text(event, entry))
            ledger.append(event, entry)
        finally:
            ledger.close()


def signed_text(event: str, entry: dict[str, Any]) -> str:
    """What a ledger entry's signature signs: every field it vouches with (which journal, of what
    kind, which records, the last hash, the key), not the last hash alone. Signing only the hash
    let whoever can write the ledger move a seal's `first` back over a record slipped in by hand
    and re-chain the ledger, and the old signature still verified. `entry` may be the whole
    ledger record: the chain's own fields are not part of what the seal says."""
    said = {k: v for k, v in entry.items() if k not in RESERVED and k != "signature"}
    return SIGNED_PREFIX + canonical({**said, "event": event}).decode()


SIGNED_PREFIX = "runbook ledger entry v2\n"


@contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """Two commands sealing at once would both chain onto the same last entry: one at a time."""
    fd, _ = open_beneath(state_dir, state_dir / f"{LEDGER}.lock", os.O_WRONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
