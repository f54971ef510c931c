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
            _check_signatures(v, expected)
    seals, problems = read_ledger(state_dir)
    only = relative_name(state_dir, run_path(state_dir, run_id)) if run_id else None
    seals = [s for s in seals if s.journal == only or (only is None and s.kind in kinds)]
    ledger_problems, missing = _check_seals(seals, verdicts, expected)
    problems += ledger_problems
    _check_entered(verdicts, seals)
    for v in verdicts.values():
        if v.kind != "run":
            _check_covered(v, seals, expected)
            continue
        _check_segments(v, [s for s in seals if s.journal == v.journal])
        if v.ok:  # from the records counted: never from a stray one
            v.state = derive(v.events).state or ""
    return Report(list(verdicts.values()), problems, missing)


def _check_entered(verdicts: dict[str, Verdict], seals: list[Seal]) -> None:
    """A run enters the ledger with its first record (ledger.opened): a run log it never heard of
    was fabricated (or copied in). One record and no entry is a crash between the two writes;
    no record at all, a crash between creating the file and writing to it."""
    entered = {s.journal for s in seals}
    for name, v in verdicts.items():
        if v.kind != "run" or not v.ok or name in entered:
            continue
        if v.records <= 1 and not v.closed:
            v.status, v.reason = (
                "incomplete",
                "not entered in the ledger yet (a crash at its start)",
            )
        else:
            _fail(
                v, 1, "not in the ledger (a run log no run ever entered: fabricated or copied in)"
            )


# what a command appends first (run.py's RunOpened, resolve's claim): all a command stopped between
# its first record and its `run.opened` entry can leave outside the ledger's segments
OPENERS = ("run.started", "run.resumed", "rollback.requested", "check.started", "step.resolved")


def _check_segments(v: Verdict, mine: list[Seal]) -> None:
    """Every record of a run belongs to a command the ledger recorded.

    Each command that appends to a run enters the ledger with its first record (`run.opened`,
    naming it as `first`) and closes with its last (`run.closed`): the records from one to the
    other are that command's, and a command killed before closing owns those up to the next
    one's first. Records outside every segment were appended by no command: after a close, by
    someone who can write the state dir (a signature only covers what it signs, and an unsigned
    tail with no `run.finished` looks like a command still running). The one exception is a
    lone opening record: a command stopped between writing it and entering the ledger. It is
    accounted for, and dropped from the records anything reads: a forged one counts for
    nothing (a `run.resumed` saying which steps were done, say).
    """
    if not v.ok or not mine:
        return  # no entry at all: _check_entered
    counted = _segments(mine, v.records)
    stray = [n for n in range(1, v.records + 1) if n not in counted]
    for group in _runs_of(stray):
        if len(group) > 1 or v.events[group[0] - 1]["event"] not in OPENERS:
            after = group[-1] == v.records
            where = (
                f"after the ledger's last entry for the run (it recorded {max(counted)} records)"
                if after
                else "between the commands the ledger recorded"
            )
            _fail(v, group[0], f"record(s) {_ranges(group)} were appended {where}, by no command")
            return
    if stray:
        note = (
            f"record(s) {_ranges(stray)}: a command's first record, never entered in the ledger "
            "(it stopped at its start): not counted"
        )
        v.reason = f"{v.reason}; {note}" if v.reason else note
        v.events = [e for e in v.events if e["seq"] not in stray]


def _segments(mine: list[Seal], total: int) -> set[int]:
    """The records of a run's log that commands the ledger recorded appended."""
    out: set[int] = set()
    start: int | None = None  # the first record of a command not closed (yet)
    for s in sorted(mine, key=lambda s: s.seq):
        if s.entry["event"] == RUN_OPENED:
            if start is not None:  # the command before it was killed: its records end here
                out.update(range(start, s.first))
            start = s.first
        else:  # a close; logs from before `run.opened` entries have only these
            lo = start if start is not None else max(out, default=0) + 1
            out.update(range(lo, s.records + 1))
            start = None
    if start is not None:  # a command running now, or killed
        out.update(range(start, total + 1))
    return out


def _check_signatures(v: Verdict, expected_key: bytes | None) -> None:
    """Applied to a run whose chain holds; marks it failed on any signature problem.

    Each command that appends to a run (run, resume, rollback, resolve) closes its own segment
    with a `run.signature` of the record before it, so a run is a chain of signed segments: a
    signature covers every record since the one before it. Only records no signature covers are
    flagged: a closed segment left unsigned after a signed one (appended by someone without
    the key). An open tail (a command running now, or one that crashed) is not closed yet.
    """
    sigs = [e for e in v.events if e["event"] == "run.signature"]
    if not sigs:
        if expected_key is not None and v.closed:
            _fail(v, v.records, "unsigned, but a signing key was expected")
        return
    first_key = sigs[0]["public_key"]
    for s in sigs:
        line = s["seq"]
        prev = v.events[line - 2] if line > 1 else {}
        if s["signs"] != prev.get("hash"):
            _fail(v, line, "the signature does not sign the record before it")
            return
        if not signing.valid(s["public_key"], s["signs"], s["signature"]):
            _fail(
                v, line, "invalid signature (records changed after signing, or a forged signature)"
            )
            return
        key = base64.b64decode(s["public_key"])
        if (expected_key is not None and key != expected_key) or s["public_key"] != first_key:
            _fail(v, line, f"signed by another key ({s['key_id']})")
            return
    tail = v.events[sigs[-1]["seq"] :]  # after the last signed segment
    if any(e["event"] == "run.finished" for e in tail):
        n = sigs[-1]["seq"] + 1
        _fail(v, n, f"records {n}-{v.records} are not covered by a signature (unsigned segment)")
    elif tail:
        v.reason = f"records {sigs[-1]['seq'] + 1}-{v.records} not signed yet (open)"


def _fail(v: Verdict, line: int, reason: str) -> None:
    v.ok, v.status, v.first_bad, v.reason = False, "failed", line, reason


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
            v.reason = f"not vouched for by the ledger: record(s) {_ranges(missing)}"
        return
    if len(missing) == v.records:
        _fail(v, v.records, "unsigned, but a signing key was expected (no signed ledger entry)")
    elif missing:
        _fail(v, missing[0], f"record {missing[0]} is not in a signed ledger entry")


def _runs_of(numbers: list[int]) -> list[list[int]]:
    """[2, 3, 4, 7] -> [[2, 3, 4], [7]]."""
    out: list[list[int]] = []
    for n in numbers:
        if out and n == out[-1][-1] + 1:
            out[-1].append(n)
        else:
            out.append([n])
    return out


def _ranges(numbers: list[int]) -> str:
    """[2, 3, 4, 7] -> "2-4, 7"."""
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in _runs_of(numbers))
