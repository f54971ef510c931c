"""`runbook checklist run`: execute items' runbooks and checks, and record what they produced
as evidence (a run's id and log hash; a check's exit code, output digests and tail)."""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from pathlib import Path
from typing import Any

from runner import checklist as cl
from runner import inventory as inventory_mod
from runner.audit import list_runs, run_path, verify_run
from runner.commands.checklist_journal import ensure_open, evidence_text, open_instance, who
from runner.errors import EXIT_FAILED, EXIT_OK, Error, UsageError
from runner.model import Action, Expect, Param, Runbook, Step

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
    now: dt.datetime,
    signing_key: str | None = None,
) -> int:
    with open_instance(c, instance, state_dir, signing_key) as (journal, inst):
        ensure_open(inst)
        if only:
            chosen = [c.item(i) for i in only]
            manual = [i.id for i in chosen if i.kind == "manual"]
            if manual:
                raise UsageError(f"nothing to run for {', '.join(manual)}: a person signs them")
        else:
            chosen = [
                i for i in c.items
                if i.kind != "manual" and inst.items[i.id].state not in ("done", "skipped")
            ]  # fmt: skip
        if not chosen:
            print(f"{c.id} {instance}: no automated item left to run")
            return EXIT_OK
        failed = 0
        for item in chosen:
            print(f"== {item.id}: {item.title}", file=sys.stderr)
            if item.kind == "runbook":
                ok, evidence = _run_runbook(item, state_dir, inventory, by, yes, quiet)
            else:
                ok, evidence = _run_check(c, item, state_dir, inventory, quiet, signing_key)
            journal.append(
                "item.ran",
                {
                    "item": item.id,
                    "kind": item.kind,
                    "ok": ok,
                    "evidence": evidence,
                    "evidence_sha256": cl.evidence_hash(evidence),
                    "checklist_sha256": c.sha256,
                    "by": who(by),
                    "at": cl.utc_text(now),
                },
            )
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {item.id}  {evidence_text(evidence)}")
    return EXIT_FAILED if failed else EXIT_OK


def _run_runbook(
    item: cl.Item, state_dir: Path, inventory: str | None, by: str | None, yes: bool, quiet: bool
) -> tuple[bool, dict[str, Any]]:
    from runner.commands.run import RunArgs, run

    assert item.runbook is not None
    params = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in item.with_]
    before = set(list_runs(state_dir))
    evidence: dict[str, Any] = {"runbook": item.runbook, "params": dict(item.with_)}
    try:
        code = run(
            RunArgs(
                name=item.runbook, params=params, inventory=inventory, yes=yes, quiet=quiet,
                operator=who(by),
            ),
            state_dir,
        )  # fmt: skip
    except Error as exc:  # nothing ran (bad params, unknown runbook...): the item failed
        evidence.update(error=str(exc), exit_code=exc.exit_code)
        return False, evidence
    new = sorted(set(list_runs(state_dir)) - before)
    if not new:
        evidence.update(exit_code=code, error="the run left no audit log")
        return False, evidence
    log = new[-1]
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
    return code == 0, evidence


def _context(inventory: str | None) -> dict[str, Any]:
    if not inventory:
        return {}
    inv = inventory_mod.load(inventory)
    # a check runs here, on this machine: the inventory's vars, and a lone host's own vars
    return inv.host_vars(inv.hosts[0]) if len(inv.hosts) == 1 else dict(inv.vars)


def _as_runbook(item: cl.Item, checklist_file: str, sha256: str, values: dict[str, Any]) -> Runbook:
    """A check item as a one-step runbook, so that it runs through the engine and executors as
    any run does (retries, timeout and process-group kill, redaction, its own audit log)."""
    chk = item.check
    assert chk is not None
    contains = (chk.stdout_contains,) if chk.stdout_contains is not None else ()
    action = Action(
        "run", chk.run, "check.run", timeout=chk.timeout, expect=Expect(chk.exit, contains)
    )
    step = Step(item.id, item.title, action, "steps[0]", safe=True)
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
    quiet: bool,
    signing_key: str | None = None,
) -> tuple[bool, dict[str, Any]]:
    from runner.commands.common import new_run_id
    from runner.commands.run import RunArgs, start
    from runner.lifecycle import derive
    from runner.loader import Catalog
    from runner.plan import build
    from runner.redact import Redactor

    assert item.check is not None
    evidence: dict[str, Any] = {"check": item.check.run}
    values = _context(inventory)
    rb = _as_runbook(item, c.file, c.sha256, values)
    try:
        inv = inventory_mod.DEFAULT
        plan = build(rb, values, inv, Catalog(), new_run_id(rb.id), Redactor(()))
        start(plan, RunArgs(name=rb.id, quiet=quiet, yes=True, signing_key=signing_key), state_dir)
    except Error as exc:  # nothing ran: say why
        evidence["error"] = f"the check did not run: {exc} (give the inventory with -i?)"
        return False, evidence
    log = run_path(state_dir, plan.run_id)
    verdict = verify_run(log, keep=True)
    ran = [e for e in verdict.events if e["event"] == "step.finished"]
    outcome = next((e for e in verdict.events if e["event"] == "step.outcome"), {})
    if not ran:
        evidence["error"] = outcome.get("reason") or "the check did not run"
        return False, evidence
    last = ran[-1]
    out, err = last["stdout"], last["stderr"]
    if last.get("timed_out"):
        evidence["error"] = f"timed out after {item.check.timeout:g}s"
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
    return outcome.get("status") == "ok", evidence
