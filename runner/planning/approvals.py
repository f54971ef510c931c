"""Approvals of saved plans: where they are recorded (one sealed journal per plan hash), how
one is recorded (`plan approve`), and the four-eyes check of `run --plan --require-approval`.
The policy's approval rules (how many, by whom) are planuse.py's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner.audit import ledger, policy
from runner.audit.signing import Signer
from runner.errors import UsageError


def approvals_path(state_dir: Path, digest: str) -> Path:
    return state_dir / "approvals" / f"approval-{digest}.jsonl"


def approve(
    saved: dict[str, Any],
    state_dir: Path,
    *,
    by: str | None,
    note: str | None,
    signing_key: str | None = None,
    ssh_key: str | None = None,
) -> dict[str, Any]:
    """Record an approval of a saved plan (meaning `approved`), sealed in the ledger; the
    record, signed by the approver's SSH key when there is one (identity.py)."""
    digest = saved["plan_hash"]
    fields = {
        "vouches": "plan.approved",
        "plan_hash": digest,
        "runbook": saved["runbook"],
        "meaning": "approved",
        "note": note,
    }
    record = policy.load().vouch(fields, key=ssh_key, claimed=by)
    log = approvals_path(state_dir, digest)
    with ledger.appending(log, "approval", state_dir, signing_key) as journal:
        journal.append("plan.approved", record)
    return record


def read(
    saved: dict[str, Any], state_dir: Path, signer: Signer | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The plan's approvals: those the ledger vouches for, and the others. One reading for
    `--require-approval` and for a policy's rule (the policy's once read the chain alone and
    counted a record appended by hand).

    Vouched: appended by a `plan approve` that sealed it (and, when the run has a signing key,
    sealed by that key: integrity.vouched). Another record was appended by hand, or by a command
    stopped before it sealed; it counts for nothing. An edited journal is refused (exit 2)."""
    from runner.audit.chain import verify_run
    from runner.audit.integrity import vouched

    path = approvals_path(state_dir, saved["plan_hash"])
    if not path.exists():
        return [], []
    verdict = verify_run(path, keep=True)
    if not verdict.ok:
        raise UsageError(f"the approvals of this plan do not verify: {verdict.line()}")
    sealed = vouched(state_dir, path, verdict, signer.public_b64 if signer else None)
    records = [e for e in verdict.events if e["event"] == "plan.approved"]
    return [e for e in records if e["seq"] in sealed], [
        e for e in records if e["seq"] not in sealed
    ]


def require_approval(
    saved: dict[str, Any], state_dir: Path, operator: str, signer: Signer | None
) -> None:
    """Four eyes: an approval by someone else, counted only if the ledger vouches for it (sealed
    by `plan approve`; signed by our key when we have one), so a hand-added approval is no use."""
    sealed, unsealed = read(saved, state_dir, signer)
    approvers = {e["by"] for e in sealed}
    others = approvers - {operator}
    if not others:
        who = f" (only by the operator {operator})" if approvers else ""
        strangers = {e["by"] for e in unsealed} - approvers - {operator}
        if strangers:
            who += f"; not vouched for by the ledger: {', '.join(sorted(strangers))}"
        raise UsageError(
            f"the plan {saved['plan_hash'][:16]} has no approval by someone other than the operator{who}"
        )
