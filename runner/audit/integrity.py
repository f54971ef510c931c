"""Verifying everything an auditor relies on: every journal's chain, the runs' signatures, and
the ledger's entries (ledger.py writes them) against the journals they vouch for.

A journal the ledger lists that is gone is "deleted"; one shorter than an entry recorded is
"truncated"; one whose record at an entry's length has another hash was "rewritten". With a
public key expected, every run must be signed by it, and every record of the other journals must
be one that a signed seal's own command appended.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path

from runner.audit import signing
from runner.audit.chain import Verdict, verify_run
from runner.audit.journal import (
    KINDS,
    Kind,
    list_journals,
    relative_name,
    run_path,
)
from runner.audit.ledger import RUN_CLOSED, RUN_OPENED, SEALED, ledger_path, signed_text
from runner.audit.ledgerseals import Seal, journal_seals, remember, seal_of
from runner.audit.runchecks import (
    check_entered,
    check_segments,
    check_signatures,
    fail,
    ranges,
)
from runner.execution.lifecycle import derive


@dataclass
class Report:
    verdicts: list[Verdict]
    ledger: list[str]  # problems found through the ledger
    missing: dict[str, str] = field(default_factory=dict)  # run id -> its problem: log deleted

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
            check_signatures(v, expected)
    seals, problems = read_ledger(state_dir)
    only = relative_name(state_dir, run_path(state_dir, run_id)) if run_id else None
    seals = [s for s in seals if s.journal == only or (only is None and s.kind in kinds)]
    ledger_problems, missing = _check_seals(seals, verdicts, expected)
    problems += ledger_problems
    check_entered(verdicts, seals)
    for v in verdicts.values():
        if v.kind != "run":
            _check_covered(v, seals, expected)
            continue
        check_segments(v, [s for s in seals if s.journal == v.journal])
        if v.ok:  # from the records counted: never from a stray one
            v.state = derive(v.events).state or ""
    return Report(list(verdicts.values()), problems, missing)


def read_ledger(state_dir: Path) -> tuple[list[Seal], list[str]]:
    """Every entry of the ledger verified, as seals; and what is wrong with them. The journal
    seals found go to ledgerseals' memory too: a report's `vouched` then uses what was verified
    in full, not the cache of an earlier command."""
    path = ledger_path(state_dir)
    try:
        before = os.stat(path)
    except FileNotFoundError:
        return [], []
    lv = verify_run(path, keep=True)
    if not lv.ok:
        return [], [f"ledger: {lv.line()}"]
    remember(path, before, [e for e in lv.events if e["event"] == SEALED])
    seals, problems = [], []
    for e in lv.events:
        if e["event"] not in (RUN_OPENED, RUN_CLOSED, SEALED):
            continue
        if "ledger_prev" in e and e["ledger_prev"] != e["prev"]:
            problems.append(
                f"ledger record {e['seq']}: does not follow the entry it signed (entries before "
                "it were dropped, inserted or reordered)"
            )
        s = seal_of(e)
        if s is None:
            problems.append(f"ledger record {e['seq']}: a malformed {e['event']} entry")
        else:
            seals.append(s)
    return seals, problems


def vouched(state_dir: Path, path: Path, v: Verdict, public_b64: str | None = None) -> set[int]:
    """The records of a journal (`v`: its verdict, with its records) the ledger vouches for:
    those a seal says its command appended, where the journal still ends that seal's records
    with the same hash (and, given a key, the seal is signed by it). Other records were appended
    without a seal: by a command that crashed before sealing, or by hand."""
    if not v.ok:
        return set()
    name = relative_name(state_dir, path)
    return covered(v, [s for s in journal_seals(state_dir) if s.journal == name], public_b64)


def covered(v: Verdict, seals: list[Seal], public_b64: str | None) -> set[int]:
    out: set[int] = set()
    for seal in seals:
        if seal.records > v.records or v.events[seal.records - 1]["hash"] != seal.last_hash:
            continue
        if public_b64 is not None and not (
            seal.entry.get("public_key") == public_b64 and _signed(seal)
        ):
            continue
        out.update(range(seal.first, seal.records + 1))
    return out


def _check_seals(
    seals: list[Seal], verdicts: dict[str, Verdict], expected: bytes | None
) -> tuple[list[str], dict[str, str]]:
    """The ledger's problems, and the runs whose log is gone (id -> the problem)."""
    problems = [p for s in seals if (p := _seal_signature_problem(s, expected))]
    missing: dict[str, str] = {}
    gone: set[str] = set()
    # the longest seal first: a truncation is measured against the most the ledger ever recorded
    for s in sorted(seals, key=lambda s: s.records, reverse=True):
        v = verdicts.get(s.journal)
        if v is None and s.journal not in gone:
            gone.add(s.journal)
            noun = "run's log" if s.kind == "run" else f"{s.kind} journal"
            problem = f"the {noun} is missing (deleted); the ledger recorded {s.records} records"
            problems.append(f"{s.name}: {problem}")
            if s.kind == "run":
                missing[s.name] = problem
        elif v is not None and v.ok:
            _check_held(v, s)
    return problems, missing


def _seal_signature_problem(s: Seal, expected: bytes | None) -> str:
    e = s.entry
    if "signature" not in e:
        if expected is not None:
            return f"ledger record {s.seq}: {s.label} unsigned, but a signing key was expected"
        return ""
    if not _signed(s):
        if signing.valid(e["public_key"], s.last_hash, e["signature"]):
            return (
                f"ledger record {s.seq}: {s.label} is signed in the old format (the signature "
                "covers only last_hash, not which records the entry vouches for)"
            )
        return f"ledger record {s.seq}: invalid signature for {s.label}"
    if expected is not None and base64.b64decode(e["public_key"]) != expected:
        return f"ledger record {s.seq}: {s.label} signed by another key ({e['key_id']})"
    return ""


def _signed(s: Seal) -> bool:
    """The entry's signature covers all it says (ledger.signed_text), not the hash alone."""
    e = s.entry
    return signing.valid(
        str(e.get("public_key", "")), signed_text(e["event"], e), str(e.get("signature", ""))
    )


def _check_held(v: Verdict, s: Seal) -> None:
    """The journal still has the records the ledger recorded, ending in the same hash."""
    if v.records < s.records:
        fail(
            v,
            v.records,
            f"truncated: {v.records} records left of the {s.records} the ledger recorded",
        )
    elif v.events[s.records - 1]["hash"] != s.last_hash:
        what = "the closing hash" if s.kind == "run" else f"the hash of record {s.records}"
        noun = "run" if s.kind == "run" else "journal"
        fail(v, s.records, f"{what} differs from the ledger's (the {noun} was rewritten)")


def _check_covered(v: Verdict, seals: list[Seal], expected: bytes | None) -> None:
    """With a key expected, every record of a journal must be vouched for by a signed seal.

    A journal has no signature of its own, so without this a record appended to it (a forged
    sign-off, say) would pass: appending needs no rewrite of the chain. A seal vouches only for
    the records its own command appended, so a later command's seal does not launder one.
    """
    if not v.ok:
        return
    mine = [s for s in seals if s.journal == v.journal]
    key = base64.b64encode(expected).decode() if expected is not None else None
    sealed = covered(v, mine, key)
    missing = [n for n in range(1, v.records + 1) if n not in sealed]
    if expected is None:  # a crash between append and seal leaves such records: say, not fail
        if missing and mine:
            v.reason = f"not vouched for by the ledger: record(s) {ranges(missing)}"
        return
    if len(missing) == v.records:
        fail(v, v.records, "unsigned, but a signing key was expected (no signed ledger entry)")
    elif missing:
        fail(v, missing[0], f"record {missing[0]} is not in a signed ledger entry")
