"""Sign-offs under the policy, and every signature re-verified where an auditor looks.

Records that vouch for something (plan approvals, checklist sign-offs and completions, manual
confirmations, reviews, a plan's use) carry `sshsig` when their signer gave a key (identity.py).
`audit verify` checks each one again, as its `by`, against the allowed signers, wherever the
record is: in the state dir or in a collector's copy. A record edited and re-chained by whoever
can rewrite the state dir breaks its signature even when the ledger was rewritten with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runner.audit import identity, policy
from runner.audit.chain import Verdict, verify_run
from runner.audit.ledger import ledger_path
from runner.checklists import state as cs


def signed_record(fields: dict[str, Any], *, key: str | None, by: str | None) -> dict[str, Any]:
    """`fields` vouched for under the policy in force: signed with `key`, or as the name `by`."""
    return policy.load().vouch(fields, key=key, claimed=by)


def policy_shortfalls(checklist: str, inst: cs.Instance) -> list[str]:
    """Items whose policy rule lacks signed sign-offs over their current evidence."""
    rules = policy.load()
    out: list[str] = []
    for it in inst.items.values():
        rule = rules.item_rule(checklist, it.id)
        if rule is None or rule.count == 0:
            continue
        current = [
            s
            for s in it.signatures
            if it.evidence_sha256 in (s.get("evidence_sha256"), s["hash"])
            and (it.meaning is None or s["meaning"] == it.meaning)
            and (s.get("checklist"), s.get("instance"))
            in ((checklist, inst.instance), (None, None))
        ]
        excluded = {}
        if it.second_person and it.performer:
            excluded[it.performer] = "performed it"
        counted, refused = policy.tally(
            rules, rule, map(identity.body, current), excluded, vouches="item.signed", meaning=None
        )
        short = policy.missing(rule, counted, refused, it.id)
        if short:
            out.append(short)
    return out


def vouching(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The signed statements in a record: itself, or the confirmations a resume carries."""
    if identity.SIG in record:
        yield identity.body(record)
    for c in record.get("confirmed") or []:
        if isinstance(c, dict) and identity.SIG in c:
            yield c


def check_verdicts(verdicts: list[Verdict], allowed: Path | None) -> int:
    """Re-verify every signature in journals that hold; a bad one fails its journal at that
    record. Returns how many were checked. Without an allowed-signers file nothing can be
    checked: each journal with signatures says so, as records the ledger does not vouch for do
    without --public-key, rather than failing."""
    checked = 0
    for v in verdicts:
        if not v.ok:
            continue
        if allowed is None:
            n = sum(1 for e in v.events for _ in vouching(e))
            if n:
                note = f"{n} signature(s) not checked: no allowed-signers file (--allowed-signers)"
                v.reason = f"{v.reason}; {note}" if v.reason else note
            continue
        for e in v.events:
            for fields in vouching(e):
                checked += 1
                verdict = identity.check(fields, allowed)
                if not verdict.ok:
                    v.ok, v.status, v.first_bad = False, "failed", e["seq"]
                    v.reason = f"record {e['seq']}: the signature of {verdict.by}: {verdict.reason}"
                    break
            if not v.ok:
                break
    return checked


def check_ledger(state_dir: Path, allowed: Path | None) -> list[str]:
    """The signed entries of the ledger itself (a plan's use, signed by its executor)."""
    path = ledger_path(state_dir)
    if not path.exists():
        return []
    lv = verify_run(path, keep=True)
    problems: list[str] = []
    if allowed is None:
        return problems
    for e in lv.events if lv.ok else []:
        for fields in vouching(e):
            verdict = identity.check(fields, allowed)
            if not verdict.ok:
                problems.append(f"ledger record {e['seq']}: {verdict.by}: {verdict.reason}")
    return problems
