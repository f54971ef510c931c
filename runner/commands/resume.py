"""`runbook resume RUN_ID` and `runbook rollback RUN_ID`: continue or undo a run from its log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner.audit import identity, policy
from runner.commands.common import prepare
from runner.commands.run import RunArgs, confirmation, execute
from runner.console import interactive
from runner.errors import UsageError
from runner.execution import resume_state as state_mod
from runner.execution.steps import Options
from runner.planning import planfile
from runner.planning.planned import Plan


def _rebuild(
    st: state_mod.RunState, secrets: list[str], *, accept_changed: bool
) -> tuple[Plan, list[str]]:
    """The run's plan again, with its recorded params (secrets asked for again, never stored)."""
    s = st.started
    masked = {k for k, v in s["params"].items() if v == "***"}
    given = [f"{k}={v}" for k, v in s["params"].items() if k not in masked and v is not None]
    extra = [x for x in secrets if x.partition("=")[0] not in masked]
    if extra:
        raise UsageError(
            "resume takes the run's own params; only its secret params may be given (-p)"
        )
    inv = s.get("inventory") or {}
    plan = prepare(
        s["file"],
        given + secrets,
        None,
        inv.get("sources") or inv.get("file"),
        run_id=st.run_id,
        limit=inv.get("limit"),
    )
    if inv.get("sha256") != plan.inventory.sha256:
        raise UsageError(f"the inventory {inv.get('file')} changed since run {st.run_id} started")
    changed = _changed_files(s, plan)
    paths = ", ".join(changed)
    if changed and s.get("plan_file"):
        # the run executes a reviewed plan: what is left of it is part of what was reviewed
        raise UsageError(
            f"runbook file(s) {paths} changed since run {st.run_id} started from the reviewed "
            f"plan {s['plan_file']} (plan {str(s.get('plan_hash'))[:16]}): a plan's run executes "
            "nothing else (no --accept-changed-runbook); make and review a new plan"
        )
    if changed and not accept_changed:
        raise UsageError(
            f"runbook file(s) {paths} changed since run {st.run_id} started; pass "
            "--accept-changed-runbook to continue with the new file(s)"
        )
    return plan, [
        f"runbook changed: {path}: {old} -> {new}" for path, (old, new) in changed.items()
    ]


def _changed_files(started: dict[str, Any], plan: Plan) -> dict[str, tuple[str | None, str | None]]:
    """Each runbook file of the run whose SHA-256 differs now: path -> (then, now).

    Every file the run uses, the called runbooks too (`files` in run.started): comparing the
    top-level one alone, resume ran a called runbook edited since. A log written before runs
    recorded `files` has the top-level file's hash alone, compared as before."""
    if "files" in started:
        recorded, now = started["files"], planfile.files(plan)
    else:
        recorded = {started["file"]: started["runbook_sha256"]}
        now = {plan.runbook.file: plan.runbook.sha256}
    paths = sorted(set(recorded) | set(now))
    return {p: (recorded.get(p), now.get(p)) for p in paths if recorded.get(p) != now.get(p)}


def resume(
    run_id: str,
    state_dir: Path,
    a: RunArgs,
    *,
    confirm: str | None,
    by: str | None,
    accept_changed: bool,
    rerun_unknown: bool,
) -> int:
    """Go on where the run really is: its steps, or (phase "rollback") its rollback. Under the
    run's lock from the start: a live run is refused as locked before its log is read."""
    with state_mod.locked(state_dir, run_id) as (st, lock):
        if st.outcome in _CLOSED:
            raise UsageError(f"run {run_id} {st.outcome}; there is nothing to resume")
        plan, notes = _rebuild(st, a.params, accept_changed=accept_changed)
        confirmed = _confirmed(st, plan, a, confirm, by)
        undoing = st.phase == "rollback"
        todo = state_mod.to_undo(st) if undoing else {}  # that rollback's hosts: not those kept
        unknown = _unknown_gate(st, todo, rerun_unknown)  # in either phase (was: forward only)
        if undoing:
            options = Options(yes=a.yes, forks=a.forks, captures=st.captures)
            options.confirmed_undo = {c["host"]: {c["step"]} for c in confirmed}
            undo = {"resumes": run_id, "rollback": todo, "confirmed": confirmed, "notes": notes}
            undo["outcome_unknown"] = unknown
            done = "; ".join(f"the undo of {c['step']} done by {c['by']}" for c in confirmed)
            undo["reason"] = "resumed the rollback" + (f" ({done})" if done else "")
            return execute(
                plan,
                state_dir,
                "run.resumed",
                undo,
                options,
                a,
                rollback_only=todo,
                current=st.lifecycle.state,
                by_person=_resolved_in_rollback(st),
                lock=lock,
            )
        resumed = {h: set(ids) for h, ids in st.completed.items()}
        for c in confirmed:
            resumed.setdefault(c["host"], set()).add(c["step"])
        fields: dict[str, Any] = {
            "resumes": run_id,
            "completed_before": {h: sorted(v) for h, v in resumed.items()},
            "outcome_unknown": unknown,
            "notes": notes,
            "runbook_sha256": plan.runbook.sha256,
        }
        options = Options(
            yes=a.yes,
            no_rollback=a.no_rollback,
            forks=a.forks,
            resumed=resumed,
            captures=st.captures,
        )
        if confirmed:
            fields["confirmed"] = confirmed
            done = "; ".join(f"{c['step']} done by {c['by']}" for c in confirmed)
            fields["reason"] = f"resumed ({done})"
        return execute(
            plan,
            state_dir,
            "run.resumed",
            fields,
            options,
            a,
            current=st.lifecycle.state,
            lock=lock,
        )


def _unknown_gate(
    st: state_mod.RunState,
    todo: dict[str, list[str]],
    rerun_unknown: bool,
    command: str = "resume",
) -> dict[str, list[str]]:
    """The one gate for what may have changed the system without a record of it: a step cut
    mid-flight, or an undo cut short (a crash, a second interrupt). Going forward, every such
    step runs again; in a rollback, those of the hosts it goes on with (`todo`) are undone
    again. Asked at a terminal; without one, refused until --rerun-unknown. Returns them."""
    undoing = st.phase == "rollback"
    unknown = {h: s for h, s in st.unknown.items() if s and (not undoing or h in todo)}
    if unknown and not rerun_unknown:
        listing = "; ".join(f"{', '.join(s)} on {h}" for h, s in unknown.items())
        again = "Undo it (again)?" if undoing else "Run again?"
        what = "the step or its undo" if undoing else "the step"
        if not interactive() or not _ask(
            f"outcome unknown (started, never recorded as finished): {listing}. {again}"
        ):
            raise UsageError(
                f"outcome unknown for {listing}: {what} may have changed the system. "
                f"Check it, then {command} with --rerun-unknown"
            )
    return unknown


_CLOSED = ("succeeded", "rolled-back", "resolved")


def _confirmed(
    st: state_mod.RunState, plan: Plan, a: RunArgs, confirm: str | None, by: str | None
) -> list[dict[str, Any]]:
    """`--confirm STEP --by NAME` (or --ssh-key): the hosts waiting at that manual step (or
    manual undo), each confirmation vouched for under the policy (signed with a person's key)."""
    if not confirm:
        return []
    hosts = [h for h, step in st.waiting.items() if step == confirm]
    if not hosts:
        waiting = ", ".join(f"{s} on {h}" for h, s in st.waiting.items()) or "none"
        raise UsageError(f"run {st.run_id} is not waiting at step '{confirm}' (waiting: {waiting})")
    if not by and not identity.key_source(a.ssh_key):
        raise UsageError("--confirm needs --by NAME (or --ssh-key): who did the manual step")
    rules = policy.load()
    confirmed = []
    for h in hosts:
        confirmed.append(confirmation(rules, plan, h, confirm, key=a.ssh_key, by=by))
    return confirmed


def _resolved_in_rollback(st: state_mod.RunState) -> bool:
    return any(e["event"] == "step.resolved" and e.get("phase") == "rollback" for e in st.events)


def rollback(
    run_id: str,
    state_dir: Path,
    a: RunArgs,
    *,
    reason: str | None = None,
    rerun_unknown: bool = False,
) -> int:
    """Undo the steps of a run that started and are not undone yet, on every host (a rollout's
    kept hosts too: a person asks to undo the whole run). A run that succeeded is undone only
    when the operator confirms it (or --yes); the reason is recorded. An undo an earlier
    rollback was cut short in goes through resume's gate: asked, or --rerun-unknown."""
    with state_mod.locked(state_dir, run_id) as (st, lock):
        plan, _ = _rebuild(st, a.params, accept_changed=False)
        todo = state_mod.started_steps(st)
        if not any(todo.values()):
            raise UsageError(f"run {run_id} has no completed steps left to roll back")
        if st.phase == "rollback":  # going forward, what rollback undoes is what it is for
            _unknown_gate(st, todo, rerun_unknown, "rollback")
        if st.outcome == "succeeded" and not a.yes:
            steps = "; ".join(f"{', '.join(reversed(s))} on {h}" for h, s in todo.items() if s)
            question = f"run {run_id} succeeded. Undo it ({steps})?"
            if not interactive() or not _ask(question):
                raise UsageError(
                    f"run {run_id} succeeded: rolling it back undoes a finished change; "
                    "confirm at a terminal or with --yes (and say why with --reason)"
                )
        options = Options(yes=a.yes, forks=a.forks, captures=st.captures)
        fields = {"rolls_back": run_id, "steps": todo, "reason": reason or "rollback requested"}
        return execute(
            plan,
            state_dir,
            "rollback.requested",
            fields,
            options,
            a,
            rollback_only=todo,
            current=st.lifecycle.state,
            requested=True,
            by_person=_resolved_in_rollback(st),
            lock=lock,
        )


def _ask(question: str) -> bool:
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False
