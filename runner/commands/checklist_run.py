"""`runbook checklist run`: execute items' runbooks and checks, and record what they produced
as evidence (a run's id and log hash; a check's exit code, output digests and tail)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.audit.chain import verify_run
from runner.audit.journal import run_path
from runner.checklists import definition as cl
from runner.checklists import state as cs
from runner.commands.checklist_journal import ensure_open, evidence_text, open_instance, who
from runner.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Error,
    UsageError,
    most_serious,
)
from runner.format import inventory as inventory_mod
from runner.format.model import Param, Runbook, Step

if TYPE_CHECKING:
    from runner.commands.run import RunArgs

TAIL = 2000  # characters of a check's output kept in the journal; the digest covers all of it


def run_items(
    c: cl.Checklist,
    instance: str,
    state_dir: Path,
    only: list[str],
    *,
    inventory: str | None,
    by: str | None,
    yes: bool = False,
    quiet: bool = False,
    clock: Callable[[], dt.datetime],
    signing_key: str | None = None,
) -> int:
    from runner.commands.run import RunArgs

    # what every run this command starts shares with the command's own records (who, the
    # signing key): set once here, so that no kind of item can leave its run unsigned
    shared = RunArgs(name="", yes=yes, quiet=quiet, operator=who(by), signing_key=signing_key)
    with open_instance(c, instance, state_dir, signing_key) as (journal, inst):
        ensure_open(inst)
        if only:
            picked = [inst.item(i, c.ids) for i in only]
            manual = [i.id for i in picked if i.kind == "manual"]
            if manual:
                raise UsageError(f"nothing to run for {', '.join(manual)}: a person signs them")
        else:
            picked = [
                i for i in inst.items.values()
                if i.kind != "manual" and i.state not in ("done", "skipped")
            ]  # fmt: skip
        if not picked:
            print(f"{c.id} {instance}: no automated item left to run")
            return EXIT_OK
        chosen = _definitions(c, instance, picked)
        codes: list[int] = []
        for item in chosen:
            print(f"== {item.id}: {item.title}", file=sys.stderr)
            if item.kind == "runbook":
                code, evidence = _run_runbook(item, state_dir, inventory, shared)
            else:
                code, evidence = _run_check(c, item, state_dir, inventory, shared)
            ok = code == EXIT_OK
            journal.append(
                "item.ran",
                {
                    "item": item.id,
                    "kind": item.kind,
                    "ok": ok,
                    "evidence": evidence,
                    "evidence_sha256": cs.evidence_hash(evidence),
                    "checklist_sha256": c.sha256,
                    "by": who(by),
                    "at": cl.utc_text(clock()),  # when this item finished, not the command
                },
            )
            codes.append(code)
            print(f"{'ok  ' if ok else 'FAIL'} {item.id}  {evidence_text(evidence)}")
            if code == EXIT_INTERRUPTED:  # Ctrl-C stops the checklist run, not only this item
                left = [i.id for i in chosen[chosen.index(item) + 1 :]]
                if left:
                    print(f"interrupted: not run: {', '.join(left)}", file=sys.stderr)
                break
    return most_serious(codes)


def _failed(exc: Error) -> int:
    """The item's code when its run raised: one that could not start (exit 2: bad params, an
    unknown runbook) is a failed item, as a failing check is, since other items may have run."""
    return EXIT_FAILED if exc.exit_code == EXIT_USAGE else exc.exit_code


def _definitions(c: cl.Checklist, instance: str, items: list[cs.ItemState]) -> list[cl.Item]:
    """How the instance's items run, read from the checklist file as it is now. The instance
    fixed which items there are, and their kinds, when it started; an item the file no longer
    defines as it was cannot run (before anything runs: exit 2), but it can be skipped."""
    found = [(it, c.definition(it.id)) for it in items]
    gone = {
        it.id: "no longer in the file" if d is None else f"now a {d.kind} item, was a {it.kind}"
        for it, d in found
        if d is None or d.kind != it.kind
    }
    if gone:
        which = next(iter(gone)) if len(gone) == 1 else "ITEM"
        raise UsageError(
            f"cannot run {', '.join(f'{i} ({why})' for i, why in gone.items())}: {c.file} "
            f"changed since this instance started; skip with a reason: "
            f"runbook checklist skip {c.id} {which} --period {instance} --reason TEXT"
        )
    return [d for _, d in found if d is not None]


def _run_runbook(
    item: cl.Item, state_dir: Path, inventory: str | None, shared: RunArgs
) -> tuple[int, dict[str, Any]]:
    """The item's exit code (its run's: 3 when the rollback failed, SPEC §5) and evidence."""
    from runner.commands.run import planned, start

    assert item.runbook is not None
    params = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in item.with_]
    evidence: dict[str, Any] = {"runbook": item.runbook, "params": dict(item.with_)}
    args = dataclasses.replace(shared, name=item.runbook, params=params, inventory=inventory)
    try:
        plan, saved = planned(args, state_dir)
        code = start(plan, args, state_dir, saved)
    except Error as exc:  # nothing ran (bad params, unknown runbook...): the item failed
        evidence.update(error=str(exc), exit_code=exc.exit_code)
        return _failed(exc), evidence
    log = run_path(state_dir, plan.run_id)  # the plan names its run: no need to look for it
    if not log.is_file():
        evidence.update(exit_code=code, error="the run left no audit log")
        return code or EXIT_FAILED, evidence
    verdict = verify_run(log, keep=True)
    last = verdict.events[-1] if verdict.events else {}
    finished = next((e for e in reversed(verdict.events) if e["event"] == "run.finished"), last)
    evidence.update(
        run_id=log.stem,
        exit_code=code,
        outcome=finished.get("outcome"),
        log_sha256=hashlib.sha256(log.read_bytes()).hexdigest(),
        last_hash=verdict.last_hash,
    )
    return code, evidence


def _context(inventory: str | None, action: Any) -> dict[str, Any]:
    from runner.format.inventory_templates import HostVars, InventoryVarError
    from runner.format.render import has_template, names_used

    if not inventory:
        return {}
    inv = inventory_mod.load(inventory)
    # a check runs here, on this machine: the inventory's vars, and a lone host's own vars
    if len(inv.hosts) == 1:
        hv = inv.host_vars(inv.hosts[0])
    else:
        hv = HostVars("localhost", dict(inv.vars), inv.groups)
    texts = [t for t in _strings(dataclasses.asdict(action)) if has_template(t)]
    try:  # the inventory's templates the check uses, rendered (inventory_templates.py)
        return hv.usable({n for t in texts for n in names_used(t)})
    except InventoryVarError as exc:
        raise UsageError(str(exc)) from None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _as_runbook(item: cl.Item, checklist_file: str, sha256: str, values: dict[str, Any]) -> Runbook:
    """A check item as a one-step runbook, so that it runs through the engine and executors as
    any run does (retries, timeout and process-group kill, redaction, its own audit log)."""
    assert item.check is not None
    step = Step(item.id, item.title, item.check.action, "steps[0]", safe=True)
    # the inventory's values, as params: in the context as they are, never rendered again
    params = tuple(Param(name) for name in values)
    return Runbook(
        f"check-{item.id}",
        item.title,
        checklist_file,
        sha256,
        (step,),
        params=params,
        on_failure="halt",
    )


def _run_check(
    c: cl.Checklist,
    item: cl.Item,
    state_dir: Path,
    inventory: str | None,
    shared: RunArgs,
) -> tuple[int, dict[str, Any]]:
    """The item's exit code (a check that does not hold is 1) and evidence."""
    from runner.commands.common import new_run_id
    from runner.commands.run import start
    from runner.execution.lifecycle import derive
    from runner.format.loader import Catalog
    from runner.format.redact import Redactor
    from runner.planning.planner import build

    assert item.check is not None
    evidence: dict[str, Any] = {"check": item.check.action.text}
    values = _context(inventory, item.check.action)
    rb = _as_runbook(item, c.file, c.sha256, values)
    try:
        inv = inventory_mod.DEFAULT
        plan = build(rb, values, inv, Catalog(), new_run_id(rb.id), Redactor(()))
        code = start(plan, dataclasses.replace(shared, name=rb.id, yes=True), state_dir)
    except Error as exc:  # nothing ran: say why
        evidence["error"] = f"the check did not run: {exc} (give the inventory with -i?)"
        return _failed(exc), evidence
    log = run_path(state_dir, plan.run_id)
    verdict = verify_run(log, keep=True)
    ran = [e for e in verdict.events if e["event"] == "step.finished"]
    outcome = next((e for e in verdict.events if e["event"] == "step.outcome"), {})
    failed = code or EXIT_FAILED  # an interrupted check is 130, as its run is
    if not ran:
        evidence["error"] = outcome.get("reason") or "the check did not run"
        return failed, evidence
    last = ran[-1]
    out, err = last["stdout"], last["stderr"]
    if last.get("timed_out"):
        evidence["error"] = f"timed out after {item.check.action.timeout:g}s"
    evidence.update(
        command=last["command"],
        exit_code=last["exit"],
        stdout_bytes=out["bytes"],
        stdout_sha256=out["sha256"],
        stderr_bytes=err["bytes"],
        stderr_sha256=err["sha256"],
        stdout_tail=(out.get("tail") or out["head"])[-TAIL:],
        run_id=plan.run_id,
        outcome=derive(verdict.events).state,
        log_sha256=hashlib.sha256(log.read_bytes()).hexdigest(),
    )
    return (EXIT_OK if outcome.get("status") == "ok" else failed), evidence
