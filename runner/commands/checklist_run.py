"""`runbook checklist run`: execute items' runbooks and checks, and record what they produced
as evidence (a run's id and log hash; a check's exit code, output digests and tail)."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

from runner import checklist as cl
from runner import inventory as inventory_mod
from runner.audit import list_runs, verify_run
from runner.commands.checklist_journal import ensure_open, evidence_text, open_instance, who
from runner.errors import EXIT_FAILED, EXIT_OK, Error, UsageError
from runner.render import RenderError, render

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
                ok, evidence = _run_check(item, inventory, quiet)
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


def _run_check(item: cl.Item, inventory: str | None, quiet: bool) -> tuple[bool, dict[str, Any]]:
    assert item.check is not None
    chk = item.check
    evidence: dict[str, Any] = {"check": chk.run}
    try:
        command = render(chk.run, _context(inventory), shell=True)
    except RenderError as exc:
        evidence["error"] = f"cannot render the check: {exc} (give the inventory with -i?)"
        return False, evidence
    evidence["command"] = command
    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", command], capture_output=True, timeout=chk.timeout, check=False
        )
    except subprocess.TimeoutExpired:
        evidence["error"] = f"timed out after {chk.timeout:g}s"
        return False, evidence
    except (OSError, ValueError) as exc:  # E2BIG (a check over 128 KiB), a NUL in a value...
        evidence["error"] = f"cannot run the check: {type(exc).__name__}: {exc}"
        return False, evidence
    out = proc.stdout.decode("utf-8", errors="replace")
    if not quiet:
        sys.stdout.write(out)
        sys.stderr.write(proc.stderr.decode("utf-8", errors="replace"))
    evidence.update(
        exit_code=proc.returncode,
        stdout_bytes=len(proc.stdout),
        stdout_sha256=hashlib.sha256(proc.stdout).hexdigest(),
        stderr_bytes=len(proc.stderr),
        stderr_sha256=hashlib.sha256(proc.stderr).hexdigest(),
        stdout_tail=out[-TAIL:],
    )
    ok = proc.returncode in chk.exit and (chk.stdout_contains is None or chk.stdout_contains in out)
    return ok, evidence
