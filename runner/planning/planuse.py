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
from runner.audit.chain import verify_run
from runner.audit.journal import Journal, now
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
    if now() >= str(expires):
        raise UsageError(f"the plan expired at {expires}: make a new one (runbook plan -o)")


def require_approvals(
    policy: Policy,
    rule: Rule,
    saved: dict[str, Any],
    approvals: list[dict[str, Any]],
    executor: dict[str, Any],
) -> None:
    """Refuse (exit 2), naming what is missing, unless the rule's approvals are there."""
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
    wrong = [a for a in approvals if a.get("plan_hash") != saved["plan_hash"]]
    others = [f"{a.get('by')}: signed another plan ({str(a.get('plan_hash'))[:16]})" for a in wrong]
    counted, refused = tally(policy, rule, [a for a in approvals if a not in wrong], excluded)
    short = missing(rule, counted, refused + others, f"runbook '{saved['runbook']}'")
    if short:
        problems.append(short)
    if problems:
        raise UsageError(f"refusing to run plan {saved['plan_hash'][:16]}: " + "; ".join(problems))


def read_approvals(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    verdict = verify_run(path, keep=True)
    if not verdict.ok:
        raise UsageError(f"the approvals of this plan do not verify: {verdict.line()}")
    return [e for e in verdict.events if e["event"] == "plan.approved"]


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
    from runner.planning.approvals import approvals_path

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
        approvals = read_approvals(approvals_path(state_dir, saved["plan_hash"]))
        require_approvals(policy, rule, saved, approvals, executor)
    return executor
