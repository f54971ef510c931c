"""Which retroactive reviews of a run count (emergency changes: `audit review`).

A review takes a run off `audit list --needs-review` (and shows as its review in `show`, the
exports and the report) only if:
1. the ledger vouches for it: a command appended and sealed it (with the given key, when there
   is one), not someone who can write the state dir and appended a record by hand;
2. under a policy: it is signed and the signature verifies against the allowed signers;
3. under a policy: its signer is a principal of `reviews.from` (any allowed signer when that
   names no group);
4. under a policy: its signer is not the run's operator: nobody reviews their own change.

`audit review` refuses what would not count; the readers judge every review again, because the
review journal is a file and the policy the reader's own: a review written under a laxer
policy file, or slipped in, must not clear the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner.audit import integrity
from runner.audit.chain import Verdict
from runner.audit.policy import Policy


def read(
    state_dir: Path, verdicts: list[Verdict], key: str | None
) -> dict[str, list[dict[str, Any]]]:
    """Each run's review records from the review journals' verdicts, each with `vouched`:
    sealed in the ledger (by `key`, a base64 public key, when given)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for v in verdicts:
        vouched = integrity.vouched(state_dir, state_dir / v.journal, v, key)
        for e in v.events if v.ok else []:
            out.setdefault(str(e.get("reviewed_run")), []).append(
                {**e, "vouched": e["seq"] in vouched}
            )
    return out


def why_not(rules: Policy, review: dict[str, Any], operator: str) -> str:
    """'' if the review counts for the run `operator` ran, else why it does not."""
    if not review.get("vouched"):
        return "not vouched for by the ledger"
    if rules.file is None:
        return ""
    checked = rules.check({k: v for k, v in review.items() if k != "vouched"})
    if not checked.signed:
        return "unsigned, and the policy wants signed reviews"
    if not checked.ok:
        return checked.reason
    if rules.reviewers and checked.by not in rules.members(rules.reviewers):
        return f"{checked.by} is not among the policy's reviewers ({', '.join(rules.reviewers)})"
    if checked.by == operator:
        return f"{checked.by} ran the change: a review is by someone else"
    return ""


def judge(rules: Policy, reviews: list[dict[str, Any]], operator: str) -> list[dict[str, Any]]:
    """The reviews, each with `counts` and, when it does not, `why_not`."""
    out = []
    for r in reviews:
        why = why_not(rules, r, operator)
        out.append({**r, "counts": not why, **({"why_not": why} if why else {})})
    return out
