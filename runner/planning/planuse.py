"""A saved plan is approved by the right people, run by someone else, once, before it expires.

- `expires` (UTC) is part of the plan's hash, so it cannot be moved; `plan -o --expires 24h`,
  default `plans.expires` of the policy (24h).
- `author` (outside the hash: it signs it) is the plan's maker, signed with `--ssh-key`.
- Executing records `plan.used` in the ledger under its lock, after checking that no earlier
  entry used the same plan: a second `run --plan` of it is refused, even from another shell.
  The run records it once it holds its run lock and its signing key (`claim`), so a run
  refused before it starts does not use the plan up.
- With a policy rule for the runbook, `run --plan` counts only approvals signed by principals of
  the rule's groups over this plan's hash, and (separation of duties) never the author's or the
  executor's, who must differ too. Runbooks with `change: emergency` need none: their runs wait
  in `audit list --needs-review` for a signed review instead.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from runner.audit import ledger
from runner.audit.journal import Journal
from runner.audit.policy import Policy, Rule, missing, seconds, tally
from runner.errors import UsageError
from runner.planning.planned import Plan

USED = "plan.used"


def expiry(policy: Policy, given: str | None) -> str:
    """The UTC time a plan saved now expires (`--expires`, else the policy's default)."""
    at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds(given or policy.expires))
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def authored(policy: Policy, plan_hash: str, key: str | None) -> dict[str, Any] | None:
    """The author's signature over the plan's hash, when they gave a key."""
    if key is None:
        return None
    fields = {"vouches": "plan.authored", "plan_hash": plan_hash, "meaning": "authored"}
    return policy.vouch(fields, key=key, claimed=None)


def check_fresh(saved: dict[str, Any], policy: Policy) -> None:
    expires = saved.get("expires")
    if expires is None:
        if policy.file is not None:
            raise UsageError("the plan has no expiry (saved by an older runbook): make it again")
        return
    from runner.audit.identity import instant

    until = instant(expires)  # as a time: as text, `...:25.5Z` sorts before `...:25Z`
    if until is None or dt.datetime.now(dt.timezone.utc) >= until:
        raise UsageError(f"the plan expired at {expires}: make a new one (runbook plan -o)")


# How far a signed `at` may be from the `ts` the journal wrote when the record was appended.
# `plan approve` signs, then appends: moments later, or minutes when a slow ssh-agent (a
# hardware key's touch) or another approver holding the journal's lock kept it waiting. After
# its `ts` it can only be by a clock's slack.
SIGNED_BEFORE_RECORDED = dt.timedelta(minutes=10)
CLOCK_SLACK = dt.timedelta(minutes=1)


def dating(approval: dict[str, Any], saved: dict[str, Any]) -> str:
    """Why an approval's `at` cannot be when it was signed ('' when it can).

    `at` is the signer's own claim, and ssh-keygen checks the key's validity (valid-before,
    valid-after) at that time: dated back, a key that expired before the plan existed still
    "verified". So `at` must lie within times the signer does not choose: the plan's life
    (`made` and `expires`, inside the plan's hash that the approval signs) and, near, the `ts`
    the journal wrote (vouched for by the ledger, which is what makes it the tool's and not the
    signer's; with a signing key, sealed with it). A plan saved before `made` existed is
    bounded by its expiry and `ts` alone."""
    from runner.audit.identity import instant

    at, by = instant(approval.get("at")), approval.get("by")
    if at is None:
        return f"{by}: no time of signing"
    made, expires = instant(saved.get("made")), instant(saved.get("expires"))
    when = approval["at"]
    if made is not None and at < made:
        return f"{by}: dated {when}, before the plan was made ({saved['made']})"
    if expires is not None and at > expires:
        return f"{by}: dated {when}, after the plan expired ({saved['expires']})"
    ts = instant(approval.get("ts"))
    if ts is None or not -CLOCK_SLACK <= ts - at <= SIGNED_BEFORE_RECORDED:
        return f"{by}: dated {when} but recorded at {approval.get('ts')}"
    return ""


def require_approvals(
    policy: Policy,
    rule: Rule,
    saved: dict[str, Any],
    approvals: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    executor: dict[str, Any],
) -> None:
    """Refuse (exit 2), naming what is missing, unless the rule's approvals are there.
    `approvals`: the records the ledger vouches for, and the others (approvals.read)."""
    author = saved.get("author")
    excluded: dict[str, str] = {}
    problems: list[str] = []
    if rule.separation:
        if (
            author is None
            or "sshsig" not in author
            or author.get("plan_hash") != saved["plan_hash"]  # signed another plan's hash
            or not policy.check(author).ok
        ):
            problems.append("the plan's author is not proven (save the plan with --ssh-key)")
        else:
            excluded[author["by"]] = "the plan's author cannot approve it"
        if "sshsig" not in executor and not policy.allow_unsigned:
            problems.append("the executor is not proven (run with --ssh-key)")
        elif executor["by"] in excluded:
            problems.append(f"{executor['by']} authored the plan and cannot also execute it")
        excluded.setdefault(executor["by"], "the executor cannot approve what they run")
    vouched, unvouched = approvals
    others = [
        f"{a.get('by')}: not vouched for by the ledger (appended without `plan approve`'s seal)"
        for a in unvouched
    ]
    fit = []
    for a in vouched:
        why = (
            f"{a.get('by')}: signed another plan ({str(a.get('plan_hash'))[:16]})"
            if a.get("plan_hash") != saved["plan_hash"]
            else dating(a, saved)
        )
        if why:
            others.append(why)
        else:
            fit.append(a)
    counted, refused = tally(
        policy, rule, fit, excluded, vouches="plan.approved", meaning="approved"
    )
    short = missing(rule, counted, refused + others, f"runbook '{saved['runbook']}'")
    if short:
        problems.append(short)
    if problems:
        raise UsageError(f"refusing to run plan {saved['plan_hash'][:16]}: " + "; ".join(problems))


def claim(state_dir: Path, saved: dict[str, Any], executor: dict[str, Any]) -> None:
    """Record the plan's use (`executor`: who, which run, signed) in the ledger, refusing if it
    was used before; under the ledger's lock, so two shells cannot both use it."""
    digest = saved["plan_hash"]
    with ledger.locked(state_dir):
        path = ledger.ledger_path(state_dir)
        if path.exists():
            with path.open("rb") as f:
                for line in f:
                    if USED.encode() not in line or digest.encode() not in line:
                        continue
                    try:
                        e = json.loads(line)
                    except ValueError:
                        continue
                    if e.get("event") == USED and e.get("plan_hash") == digest:
                        raise UsageError(
                            f"the plan {digest[:16]} was already used by run {e.get('run')} at "
                            f"{e.get('ts')}: a plan runs once; make a new one"
                        )
        journal = Journal(path, ledger.LEDGER, root=state_dir)
        try:
            journal.append(USED, executor)
        finally:
            journal.close()


def gate(
    state_dir: Path,
    plan: Plan,
    saved: dict[str, Any] | None,
    *,
    key: str | None,
    operator: str | None,
    signing_key: str | None = None,
) -> dict[str, Any] | None:
    """Everything the policy asks before a run starts; exit 2 naming what is missing.

    Without a saved plan: refused when the runbook's rule needs approvals (not an emergency).
    With one: fresh and approved as the rule says; returns the executor's record, which the
    run `claim`s once nothing but the run itself can refuse (under its lock, its key loaded):
    claimed here, a run the lock or a bad key then refused used the plan up, and the ledger
    named a run that never had a log.
    """
    from runner.audit import identity
    from runner.audit.policy import load
    from runner.audit.signing import load_signer
    from runner.planning import approvals

    policy = load()
    rule = policy.runbook_rule(plan.runbook.id)
    needed = rule is not None and rule.count > 0 and plan.runbook.change != "emergency"
    if saved is None:
        if needed and rule is not None:
            raise UsageError(
                f"runbook '{plan.runbook.id}' needs {rule.describe()} approvals "
                f"({policy.file}): save a plan (runbook plan -o), have it approved, "
                "run it with --plan"
            )
        return None
    check_fresh(saved, policy)
    fields = {
        "vouches": USED,
        "plan_hash": saved["plan_hash"],
        "run": plan.run_id,
        "meaning": "executed",
    }
    executor = identity.vouch(fields, key=key, allowed=policy.allowed, claimed=operator)
    if needed and rule is not None:
        found = approvals.read(saved, state_dir, load_signer(signing_key))
        require_approvals(policy, rule, saved, found, executor)
    return executor
