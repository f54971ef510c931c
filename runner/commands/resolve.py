"""`runbook resolve RUN_ID --step STEP --by NAME --reason TEXT`: a person closes what the tool
cannot. In a run's rollback (it failed, or waits at a manual undo), the step counts as undone by
hand: `runbook resume RUN_ID` goes on with the rollback past it (and so does `runbook rollback`),
and when nothing is left to undo on the hosts the rollback covers the run closes as "resolved". Among the run's steps (a failed, waiting or interrupted run), the step counts as
done by hand: `runbook resume RUN_ID` goes on after it. Recorded as `step.resolved`, signed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from runner.audit import policy
from runner.audit.journal import Journal
from runner.audit.journalsink import JournalSink
from runner.audit.ledger import opened, seal
from runner.audit.signing import load_signer
from runner.errors import UsageError
from runner.execution import resume_state as state_mod
from runner.execution.lifecycle import Tracker

_OPEN = ("waiting", "failed", "rollback-failed", "interrupted", "running", "rolling-back")


def resolve(
    run_id: str,
    state_dir: Path,
    *,
    step: str,
    by: str,
    reason: str,
    host: str | None = None,
    signing_key: str | None = None,
    ssh_key: str | None = None,
) -> int:
    signer = load_signer(signing_key)  # a bad key stops here, before anything is recorded
    if not by.strip() or not reason.strip():
        raise UsageError("resolve needs --by NAME and --reason TEXT: who did what by hand")
    with state_mod.locked(state_dir, run_id) as (st, _):
        if st.outcome not in _OPEN:
            raise UsageError(f"run {run_id} {st.outcome}: there is nothing for a person to resolve")
        undoing = st.phase == "rollback"
        # in a rollback, what it has left to undo: on the hosts it covers, never the ones a
        # rollout kept (a claim about those is refused, and they do not hold the run open)
        left = state_mod.to_undo(st) if undoing else {}
        if undoing:
            hosts = [h for h, steps in left.items() if step in steps]
        else:
            hosts = [h for h in st.started["hosts"] if step not in st.completed.get(h, [])]
            if not any(e.get("step") == step for e in st.events):
                hosts = []  # never reached: nothing a person could have finished for it
        hosts = [h for h in hosts if host in (None, h)]
        if not hosts:
            what = "left to undo" if undoing else "that it started and did not complete"
            raise UsageError(
                f"run {run_id} has no step '{step}' {what}" + (f" on {host}" if host else "")
            )
        # a person's claim, vouched for under the policy like a manual confirmation
        # (identity.py): signed with their SSH key when given, refused unsigned where the policy
        # says so
        rules, phase = policy.load(), "rollback" if undoing else "forward"
        records = [
            rules.vouch(
                {"vouches": "step.resolved", "run": run_id, "host": h, "step": step}
                | {"meaning": "resolved", "reason": reason, "phase": phase},
                key=ssh_key,
                claimed=by,
            )
            for h in hosts
        ]
        journal = Journal(st.path, run_id)
        try:
            first = journal.seq + 1
            journal.append("step.resolved", records[0])
            opened(journal, state_dir, signer, first)  # in the ledger at once, as every command
            for claim in records[1:]:
                journal.append("step.resolved", claim)
            life = Tracker(JournalSink(journal).event, st.outcome, by=records[0]["by"])
            life.phase = st.phase
            state, code = st.outcome or "running", 0
            now = {(h, step) for h in hosts}
            rest = {h: [s for s in steps if (h, s) not in now] for h, steps in left.items()}
            rest = {h: steps for h, steps in rest.items() if steps}
            if undoing and not rest:
                code = life.to("resolved", reason)
                state = "resolved"
            journal.append("run.finished", {"outcome": state, "exit_code": code, "resolved": step})
            seal(journal, state_dir, signer)
        finally:
            journal.close()
    if state == "resolved":
        print(f"run {run_id}: resolved by {by} (nothing left to undo)")
    elif undoing:
        listing = "; ".join(f"{', '.join(reversed(s))} on {h}" for h, s in rest.items())
        print(
            f"step {step} recorded as undone by {by}; `runbook resume {run_id}` goes on with "
            f"the rollback ({listing})"
        )
    else:
        print(f"step {step} recorded as done by {by}; `runbook resume {run_id}` goes on")
    print(f"audit log: {st.path}", file=sys.stderr)
    return code
