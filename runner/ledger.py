"""Sealing journals in the ledger, and verifying everything an auditor relies on.

When a run closes, its last hash is (1) signed in a final `run.signature` record of the run's own
log, when a signing key is configured, and (2) appended to `<state>/ledger.jsonl`, a hash-chained
journal of its own whose entries are signed too (`run.closed`). Checklist, approval and review
journals are sealed the same way each time a command has appended to them (`journal.sealed`); their
only signature is the ledger entry's. The ledger is what catches a journal that was deleted or
truncated: the chain of a truncated file is still a valid chain.
"""

from __future__ import annotations

import base64
import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import signing
from runner.audit import (
    KINDS,
    Journal,
    Kind,
    Verdict,
    list_journals,
    relative_name,
    run_path,
    verify_run,
)
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
    journal: Journal, state_dir: Path, kind: Kind, signer: signing.Signer | None
) -> None:
    """Record a checklist, approval or review journal's length and last hash in the ledger."""
    entry = {
        "journal": relative_name(state_dir, journal.path),
        "kind": kind,
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
                seal_journal(journal, state_dir, kind, signer)
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
    with _locked(state_dir):
        ledger = Journal(ledger_path(state_dir), LEDGER, actor=journal.actor)
        try:
            ledger.append(event, entry)
        finally:
            ledger.close()


@contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """Two commands sealing at once would both chain onto the same last entry: one at a time."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fh = open(state_dir / f"{LEDGER}.lock", "a")  # noqa: SIM115 - held across the yield
    except OSError as exc:
        raise StateError(f"cannot lock the ledger: {exc.strerror or exc}") from None
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


@dataclass
class Report:
    verdicts: list[Verdict]
    ledger: list[str]  # problems found through the ledger

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts) and not self.ledger


def verify(
    state_dir: Path,
    run_id: str | None = None,
    public_key: str | None = None,
    *,
    kinds: tuple[Kind, ...] = KINDS,
) -> Report:
    """Every journal of those kinds (or the one run), its signatures, and the ledger's entries."""
    expected = signing.load_public(public_key) if public_key else None
    found: list[tuple[Kind, Path]] = (
        [("run", run_path(state_dir, run_id))] if run_id else list_journals(state_dir, kinds)
    )
    verdicts: dict[str, Verdict] = {}
    for kind, path in found:
        if path.exists():
            name = relative_name(state_dir, path)
            verdicts[name] = verify_run(path, keep=True, kind=kind, journal=name)
    for v in verdicts.values():
        if v.ok and v.kind == "run":
            _check_signatures(v, expected)
    seals, problems = _read_ledger(state_dir)
    only = relative_name(state_dir, run_path(state_dir, run_id)) if run_id else None
    seals = [s for s in seals if s.journal == only or (only is None and s.kind in kinds)]
    problems += _check_seals(seals, verdicts, expected)
    for v in verdicts.values():
        if v.kind != "run":
            _check_covered(v, seals, expected)
    return Report(list(verdicts.values()), problems)


def _check_signatures(v: Verdict, expected_key: bytes | None) -> None:
    """Applied to a run whose chain holds; marks it failed on any signature problem."""
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

    @property
    def label(self) -> str:
        return f"run {self.name}" if self.kind == "run" else f"{self.kind} journal {self.name}"


def _read_ledger(state_dir: Path) -> tuple[list[Seal], list[str]]:
    path = ledger_path(state_dir)
    if not path.exists():
        return [], []
    lv = verify_run(path, keep=True)
    if not lv.ok:
        return [], [f"ledger: {lv.line()}"]
    seals, problems = [], []
    for e in lv.events:
        if e["event"] not in (RUN_CLOSED, SEALED):
            continue
        s = _seal_of(e)
        if s is None:
            problems.append(f"ledger record {e['seq']}: a malformed {e['event']} entry")
        else:
            seals.append(s)
    return seals, problems


def _seal_of(e: dict[str, Any]) -> Seal | None:
    """The entry as a Seal, or None when a field an auditor relies on is missing or mistyped."""
    run = e["event"] == RUN_CLOSED  # the older entry type: a run is named by its id
    name = e.get("run") if run else e.get("journal")
    kind = "run" if run else e.get("kind")
    records, last_hash = e.get("records"), e.get("last_hash")
    sig_fields = [e.get(k) for k in ("public_key", "signature", "key_id")]
    if (
        not isinstance(name, str)
        or kind not in KINDS
        or not isinstance(records, int)
        or records < 1
        or not isinstance(last_hash, str)
        or ("signature" in e and not all(isinstance(x, str) for x in sig_fields))
    ):
        return None
    journal = f"runs/{name}.jsonl" if run else name
    return Seal(e["seq"], journal, kind, name, records, last_hash, e)


def _check_seals(
    seals: list[Seal], verdicts: dict[str, Verdict], expected: bytes | None
) -> list[str]:
    problems = [p for s in seals if (p := _seal_signature_problem(s, expected))]
    missing: set[str] = set()
    # the longest seal first: a truncation is measured against the most the ledger ever recorded
    for s in sorted(seals, key=lambda s: s.records, reverse=True):
        v = verdicts.get(s.journal)
        if v is None and s.journal not in missing:
            missing.add(s.journal)
            noun = "run's log" if s.kind == "run" else f"{s.kind} journal"
            problems.append(
                f"{s.name}: the {noun} is missing (deleted); the ledger recorded {s.records} records"
            )
        elif v is not None and v.ok:
            _check_held(v, s)
    return problems


def _seal_signature_problem(s: Seal, expected: bytes | None) -> str:
    e = s.entry
    if "signature" not in e:
        if expected is not None:
            return f"ledger record {s.seq}: {s.label} unsigned, but a signing key was expected"
        return ""
    if not signing.valid(e["public_key"], s.last_hash, e["signature"]):
        return f"ledger record {s.seq}: invalid signature for {s.label}"
    if expected is not None and base64.b64decode(e["public_key"]) != expected:
        return f"ledger record {s.seq}: {s.label} signed by another key ({e['key_id']})"
    return ""


def _check_held(v: Verdict, s: Seal) -> None:
    """The journal still has the records the ledger recorded, ending in the same hash."""
    if v.records < s.records:
        _fail(
            v,
            v.records,
            f"truncated: {v.records} records left of the {s.records} the ledger recorded",
        )
    elif v.events[s.records - 1]["hash"] != s.last_hash:
        what = "the closing hash" if s.kind == "run" else f"the hash of record {s.records}"
        noun = "run" if s.kind == "run" else "journal"
        _fail(v, s.records, f"{what} differs from the ledger's (the {noun} was rewritten)")


def _check_covered(v: Verdict, seals: list[Seal], expected: bytes | None) -> None:
    """With a key expected, every record of a journal must be vouched for by a signed seal.

    A journal has no signature of its own, so without this a record appended to it (a forged
    sign-off, say) would pass: appending needs no rewrite of the chain.
    """
    if expected is None or not v.ok:
        return
    signed = max(
        (s.records for s in seals if s.journal == v.journal and "signature" in s.entry), default=0
    )
    if signed == 0:
        _fail(v, v.records, "unsigned, but a signing key was expected (no signed ledger entry)")
    elif v.records > signed:
        _fail(v, signed + 1, f"records after {signed} are not in a signed ledger entry")
