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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runner import signing
from runner.audit import Journal, Kind, relative_name
from runner.errors import StateError

LEDGER = "ledger"
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
    """
    signer = signing.load_signer(signing_key)
    journal = Journal(path, path.stem)  # the verifier ties a journal's run_id to its file name
    before = journal.seq
    try:
        yield journal
    finally:
        try:
            if journal.seq != before:
                seal_journal(journal, state_dir, kind, signer, first=before + 1)
        finally:
            journal.close()


def _enter(
    state_dir: Path,
    event: str,
    entry: dict[str, Any],
    journal: Journal,
    signer: signing.Signer | None,
) -> None:
    if signer is not None:
        entry.update(
            key_id=signer.key_id,
            public_key=signer.public_b64,
            signature=signer.sign(journal.last_hash),
        )
    with locked(state_dir):
        ledger = Journal(ledger_path(state_dir), LEDGER, actor=journal.actor)
        try:
            ledger.append(event, entry)
        finally:
            ledger.close()


@contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """Two commands sealing at once would both chain onto the same last entry: one at a time."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fh = open(state_dir / f"{LEDGER}.lock", "a")  # noqa: SIM115 - held across the yield
    except OSError as exc:
        raise StateError(f"cannot lock the ledger: {exc.strerror or exc}") from None
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
