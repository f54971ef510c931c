"""`run --plan FILE`: the saved plan rebuilt from its own inputs, and the options it fixes.

What runs is what was reviewed: the runbook, params, inventory, hosts and steps come from the
plan, and `run` refuses (exit 2, nothing ran) when any of them changed since, or when an option
would change them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.audit.journal import current_actor
from runner.audit.signing import load_signer
from runner.commands.common import prepare
from runner.errors import UsageError
from runner.planning import planfile
from runner.planning.approvals import require_approval
from runner.planning.planned import Plan

if TYPE_CHECKING:
    from runner.commands.run import RunArgs


def secret_params(saved: dict[str, Any]) -> set[str]:
    """The names of a saved plan's secret params: the only values given again with it (-p)."""
    return {k for k, v in saved["params"].items() if isinstance(v, dict)}


# The options a saved plan fixes (RunArgs field -> option): each would change what runs, so with
# --plan giving one is refused, never ignored (--limit, -i and -e were: exit 0, every host of
# the plan ran). -p is refused but for secret params, which the plan holds only as HMACs.
_PLAN_FIXES = {
    "params_file": "--params",
    "inventory": "-i/--inventory",
    "extra": "-e/--extra-vars",
    "limit": "--limit",
    "from_step": "--from",
}


def refuse_overrides(a: RunArgs, saved: dict[str, Any]) -> None:
    """Exit 2 naming every option given with --plan that would change what runs (the values
    are not repeated: -e may carry anything)."""
    secret = secret_params(saved)
    given = [f"-p {n}" for x in a.params if (n := x.partition("=")[0]) not in secret]
    given += [flag for attr, flag in _PLAN_FIXES.items() if getattr(a, attr)]
    if given:
        raise UsageError(
            f"refusing {', '.join(given)} with --plan: what runs comes from the plan (params, "
            "inventory, hosts, steps; only secret params are given again, with -p); make and "
            "review a new plan to change it"
        )


def from_saved(a: RunArgs, state_dir: Path) -> tuple[Plan, dict[str, Any]]:
    """Rebuild the plan from the saved plan's own inputs; refuse (exit 2) if any changed."""
    saved = planfile.load(Path(a.plan_file or ""))
    if a.name and a.name not in (saved["runbook"], saved["runbook_file"]):
        raise UsageError(f"the plan is for runbook '{saved['runbook']}', not '{a.name}'")
    refuse_overrides(a, saved)
    secret_names = secret_params(saved)
    given = [
        f"{k}={v}" for k, v in saved["params"].items() if k not in secret_names and v is not None
    ]
    given += a.params
    inv = saved["inventory"]
    plan = prepare(
        saved["runbook_file"],
        given,
        None,
        inv.get("sources") or inv["file"],
        limit=inv.get("limit"),
    )
    changed = planfile.differences(saved, plan, state_dir)
    if changed:
        raise UsageError("refusing to run the saved plan: " + "; ".join(changed))
    if a.require_approval:
        operator = a.operator or current_actor()["user"]
        require_approval(saved, state_dir, operator, load_signer(a.signing_key))
    return plan, saved
