"""The checks of a run's log, beside its chain (chain.py) and its ledger entries (integrity.py):
its signatures, its entry in the ledger, and that every record belongs to a command the ledger
recorded. integrity.verify applies them to every run."""

from __future__ import annotations

import base64

from runner.audit import signing
from runner.audit.chain import Verdict
from runner.audit.ledger import RUN_OPENED
from runner.audit.ledgerseals import Seal


def check_entered(verdicts: dict[str, Verdict], seals: list[Seal]) -> None:
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
            fail(v, 1, "not in the ledger (a run log no run ever entered: fabricated or copied in)")


# what a command appends first (run.py's RunOpened, resolve's claim): all a command stopped between
# its first record and its `run.opened` entry can leave outside the ledger's segments
OPENERS = ("run.started", "run.resumed", "rollback.requested", "check.started", "step.resolved")


def check_segments(v: Verdict, mine: list[Seal]) -> None:
    """Every record of a run belongs to a command the ledger recorded.

    Each command that appends to a run enters the ledger with its first record (`run.opened`,
    naming it as `first`) and closes with its last (`run.closed`): the records from one to the
    other are that command's, and a command killed before closing owns those up to the next
    one's first. Records outside every segment were appended by no command: after a close, by
    someone who can write the state dir (a signature only covers what it signs, and an unsigned
    tail with no `run.finished` looks like a command still running). The one exception is a
    lone opening record: a command stopped between writing it and entering the ledger. It is
    accounted for, and dropped from the records anything reads: a forged one counts for
    nothing (a `run.resumed` saying which steps were done, say). Record 1 is kept: a run
    stopped before its first entry is still that run when a resume enters it.
    """
    if not v.ok or not mine:
        return  # no entry at all: check_entered
    counted = segments(mine, v.records)
    stray = [n for n in range(1, v.records + 1) if n not in counted]
    for group in _runs_of(stray):
        if len(group) > 1 or v.events[group[0] - 1]["event"] not in OPENERS:
            after = group[-1] == v.records
            where = (
                f"after the ledger's last entry for the run (it recorded {max(counted)} records)"
                if after
                else "between the commands the ledger recorded"
            )
            fail(v, group[0], f"record(s) {ranges(group)} were appended {where}, by no command")
            return
    # but the run's own first record (`run.started`): what every later command of the run reads
    # to know what the run is, fixed in place by the chain of the entries that follow it
    dropped = [n for n in stray if n != 1]
    if stray:
        note = (
            f"record(s) {ranges(stray)}: a command's first record, never entered in the ledger "
            f"(it stopped at its start){': not counted' if dropped else ''}"
        )
        v.reason = f"{v.reason}; {note}" if v.reason else note
        v.events = [e for e in v.events if e["seq"] not in dropped]


def segments(mine: list[Seal], total: int) -> set[int]:
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


def check_signatures(v: Verdict, expected_key: bytes | None) -> None:
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
            fail(v, v.records, "unsigned, but a signing key was expected")
        return
    first_key = sigs[0]["public_key"]
    for s in sigs:
        line = s["seq"]
        prev = v.events[line - 2] if line > 1 else {}
        if s["signs"] != prev.get("hash"):
            fail(v, line, "the signature does not sign the record before it")
            return
        if not signing.valid(s["public_key"], s["signs"], s["signature"]):
            fail(
                v, line, "invalid signature (records changed after signing, or a forged signature)"
            )
            return
        key = base64.b64decode(s["public_key"])
        if (expected_key is not None and key != expected_key) or s["public_key"] != first_key:
            fail(v, line, f"signed by another key ({s['key_id']})")
            return
    tail = v.events[sigs[-1]["seq"] :]  # after the last signed segment
    if any(e["event"] == "run.finished" for e in tail):
        n = sigs[-1]["seq"] + 1
        fail(v, n, f"records {n}-{v.records} are not covered by a signature (unsigned segment)")
    elif tail:
        v.reason = f"records {sigs[-1]['seq'] + 1}-{v.records} not signed yet (open)"


def fail(v: Verdict, line: int, reason: str) -> None:
    v.ok, v.status, v.first_bad, v.reason = False, "failed", line, reason


def _runs_of(numbers: list[int]) -> list[list[int]]:
    """[2, 3, 4, 7] -> [[2, 3, 4], [7]]."""
    out: list[list[int]] = []
    for n in numbers:
        if out and n == out[-1][-1] + 1:
            out[-1].append(n)
        else:
            out.append([n])
    return out


def ranges(numbers: list[int]) -> str:
    """[2, 3, 4, 7] -> "2-4, 7"."""
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in _runs_of(numbers))
