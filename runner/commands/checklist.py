"""`runbook checklist start|run|sign|skip|status|complete|due`.

Every command reads the instance's journal (verified first: a broken chain is exit 4), decides,
and appends one record per fact under a lock, so two people signing at once cannot both pass a
check that only one of them should. The clock is a parameter (`now`) so that tests can stand at
period boundaries.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runner import checklist as cl
from runner import inventory as inventory_mod
from runner.audit import Journal, current_actor, list_runs, verify_run
from runner.errors import EXIT_FAILED, EXIT_OK, AuditError, Error, UsageError
from runner.render import RenderError, render

TAIL = 2000  # characters of a check's output kept in the journal; the digest covers all of it


def add_parser(sub: Any) -> None:
    c = sub.add_parser("checklist", help="checklist instances and sign-off")
    csub = c.add_subparsers(dest="checklist_command", required=True, metavar="ACTION")

    def cmd(name: str, help_: str, *, item: bool = False) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = csub.add_parser(name, help=help_)
        p.add_argument("name", help="checklist name or path")
        if item:
            p.add_argument("item", help="item id")
        p.add_argument(
            "--period",
            metavar="INSTANCE",
            help="the instance (2026-11-24, 2026-W48, 2026-11, 2026-Q4, or a once-only name); "
            "default: the current period",
        )
        return p

    st = cmd("start", "open the instance of the current (or given) period")
    st.add_argument("--by", help="who starts it (default: OS user)")
    r = cmd("run", "execute the automated items and attach their evidence")
    r.add_argument("items", nargs="*", metavar="ITEM", help="only these (default: all not done)")
    r.add_argument("-i", "--inventory", metavar="INV")
    r.add_argument("--by", help="who performs them (default: OS user)")
    r.add_argument("--yes", action="store_true", help="answer runbooks' confirm: questions")
    r.add_argument("--quiet", action="store_true", help="do not echo command output")
    sg = cmd("sign", "sign an item", item=True)
    sg.add_argument("--by", help="the signer's name (default: OS user)")
    sg.add_argument(
        "--meaning",
        choices=["performed", "reviewed", "approved", "verified"],
        help="default: the item's sign-off meaning",
    )
    sg.add_argument("--note")
    sk = cmd("skip", "skip an item, with a reason", item=True)
    sk.add_argument("--reason", required=True)
    sk.add_argument("--by", help="who decides (default: OS user)")
    ss = cmd("status", "the instance's items, who did what, evidence and progress")
    ss.add_argument("--format", choices=["text", "md", "json"], default="text")
    ss.add_argument("--history", action="store_true", help="also every record, in order")
    co = cmd("complete", "the final sign-off; refused while a required item is pending")
    co.add_argument("--by", help="who closes it (default: OS user)")
    co.add_argument("--note")
    du = csub.add_parser("due", help="checklists with no completed instance for the current period")
    du.add_argument("--format", choices=["text", "json"], default="text")


def dispatch(args: argparse.Namespace, state_dir: Path, *, now: dt.datetime | None = None) -> int:
    when = now or cl.now_local()
    action = args.checklist_command
    if action == "due":
        return due(state_dir, now=when, as_json=args.json or args.format == "json")
    c = cl.load(args.name)
    instance = _instance(c, args.period, when)
    if action == "start":
        return start(c, instance, state_dir, by=args.by, now=when)
    if action == "run":
        return run_items(
            c, instance, state_dir, args.items, inventory=args.inventory, by=args.by,
            yes=args.yes, quiet=args.quiet, now=when,
        )  # fmt: skip
    if action == "sign":
        return sign(
            c, instance, state_dir, args.item, by=args.by, meaning=args.meaning,
            note=args.note, now=when,
        )  # fmt: skip
    if action == "skip":
        return skip(c, instance, state_dir, args.item, reason=args.reason, by=args.by, now=when)
    if action == "status":
        fmt = "json" if args.json else args.format
        return status(c, instance, state_dir, fmt=fmt, history=args.history)
    if action == "complete":
        return complete(c, instance, state_dir, by=args.by, note=args.note, now=when)
    raise AssertionError(action)  # pragma: no cover


def _instance(c: cl.Checklist, given: str | None, now: dt.datetime) -> str:
    if given:
        return cl.check_instance(c.period, given)
    return cl.current_period(c.period, now)


def _who(by: str | None) -> str:
    return by or current_actor()["user"]


def read(path: Path) -> cl.Instance:
    verdict = verify_run(path, keep=True)
    if not verdict.ok:
        raise AuditError(f"the checklist's audit log does not verify: {verdict.line()}")
    return cl.derive(verdict.events)


@contextmanager
def _open(c: cl.Checklist, instance: str, state_dir: Path) -> Iterator[tuple[Journal, cl.Instance]]:
    """The instance's journal and its current state, under an exclusive lock."""
    path = cl.journal_path(state_dir, c.id, instance)
    if not path.exists():
        flag = f" --period {instance}"
        raise UsageError(f"{c.id} {instance} is not started: runbook checklist start {c.id}{flag}")
    with _lock(path):
        inst = read(path)
        journal = Journal(path, path.stem)
        try:
            yield journal, inst
        finally:
            journal.close()


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _open_for_change(inst: cl.Instance) -> None:
    if inst.completed is not None:
        raise UsageError(
            f"{inst.checklist} {inst.instance} was completed by {inst.completed['by']} at "
            f"{inst.completed['at']}; a closed instance does not change"
        )


def start(
    c: cl.Checklist, instance: str, state_dir: Path, *, by: str | None, now: dt.datetime
) -> int:
    path = cl.journal_path(state_dir, c.id, instance)
    with _lock(path):
        if path.exists():
            inst = read(path)
            print(
                f"{c.id} {instance}: already started by {inst.started['by']} at {inst.started['at']}"
            )
            return EXIT_OK
        journal = Journal(path, path.stem)
        try:
            journal.append(
                "checklist.started",
                {
                    "checklist": c.id,
                    "title": c.title,
                    "period": c.period,
                    "instance": instance,
                    "file": c.file,
                    "checklist_sha256": c.sha256,
                    "items": [i.summary() for i in c.items],
                    "by": _who(by),
                    "at": cl.utc_text(now),
                },
            )
        finally:
            journal.close()
    print(f"{c.id} {instance}: started ({len(c.items)} items); audit log: {path}")
    return EXIT_OK


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
) -> int:
    with _open(c, instance, state_dir) as (journal, inst):
        _open_for_change(inst)
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
                    "by": _who(by),
                    "at": cl.utc_text(now),
                },
            )
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {item.id}  {_evidence_text(evidence)}")
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
                operator=_who(by),
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


def sign(
    c: cl.Checklist,
    instance: str,
    state_dir: Path,
    item_id: str,
    *,
    by: str | None,
    meaning: str | None,
    note: str | None,
    now: dt.datetime,
) -> int:
    item = c.item(item_id)
    signer = _who(by)
    with _open(c, instance, state_dir) as (journal, inst):
        _open_for_change(inst)
        st = inst.items[item.id]
        wanted = meaning or st.meaning or "performed"
        if st.state == "failed":
            raise UsageError(
                f"{item.id} failed ({_evidence_text(st.evidence or {})}); re-run it "
                f"(runbook checklist run {c.id} {item.id}) or skip it with a reason"
            )
        if st.kind != "manual" and st.evidence is None and st.state != "skipped":
            raise UsageError(f"{item.id} has not run yet: runbook checklist run {c.id} {item.id}")
        if st.second_person and st.performer == signer and wanted == st.meaning:
            raise UsageError(
                f"{item.id} needs a second person: {signer} performed it and cannot also sign "
                f"it as {wanted}"
            )
        actor = current_actor()
        journal.append(
            "item.signed",
            {
                "item": item.id,
                "by": signer,
                "user": actor["user"],
                "host": actor["host"],
                "at": cl.utc_text(now),
                "meaning": wanted,
                "note": note,
                "evidence_sha256": st.evidence_sha256,
            },
        )
    after = read(cl.journal_path(state_dir, c.id, instance)).items[item.id]
    print(f"{item.id}: signed by {signer} ({wanted}); now {after.state} {after.waiting}".rstrip())
    return EXIT_OK


def skip(
    c: cl.Checklist,
    instance: str,
    state_dir: Path,
    item_id: str,
    *,
    reason: str,
    by: str | None,
    now: dt.datetime,
) -> int:
    item = c.item(item_id)
    if not reason.strip():
        raise UsageError("a skip needs a reason")
    with _open(c, instance, state_dir) as (journal, inst):
        _open_for_change(inst)
        journal.append(
            "item.skipped",
            {"item": item.id, "reason": reason, "by": _who(by), "at": cl.utc_text(now)},
        )
    print(f"{item.id}: skipped by {_who(by)}: {reason}")
    return EXIT_OK


def complete(
    c: cl.Checklist,
    instance: str,
    state_dir: Path,
    *,
    by: str | None,
    note: str | None,
    now: dt.datetime,
) -> int:
    with _open(c, instance, state_dir) as (journal, inst):
        _open_for_change(inst)
        pending = inst.pending_required
        if pending:
            detail = "; ".join(
                f"{i} ({inst.items[i].state}: {inst.items[i].waiting or '-'})" for i in pending
            )
            raise UsageError(
                f"{c.id} {instance} cannot be completed: pending required items: {detail}"
            )
        journal.append(
            "checklist.completed",
            {
                "by": _who(by),
                "at": cl.utc_text(now),
                "note": note,
                "items": {
                    i.id: {"state": i.state, "evidence_sha256": i.evidence_sha256}
                    for i in inst.items.values()
                },
            },
        )
    print(f"{c.id} {instance}: completed by {_who(by)}")
    return EXIT_OK


def status(
    c: cl.Checklist, instance: str, state_dir: Path, *, fmt: str, history: bool = False
) -> int:
    path = cl.journal_path(state_dir, c.id, instance)
    if not path.exists():
        raise UsageError(f"{c.id} {instance} is not started: runbook checklist start {c.id}")
    sys.stdout.write(render_status(read(path), fmt, history=history))
    return EXIT_OK


def due(state_dir: Path, *, now: dt.datetime, as_json: bool = False) -> int:
    rows: list[dict[str, str]] = []
    from runner.loader import discover

    for path in discover("checklist"):
        c = cl.load(str(path))
        if c.period == "once":
            continue
        instance = cl.current_period(c.period, now)
        jpath = cl.journal_path(state_dir, c.id, instance)
        if not jpath.exists():
            rows.append(
                {
                    "checklist": c.id,
                    "period": c.period,
                    "instance": instance,
                    "state": "not started",
                }
            )
            continue
        inst = read(jpath)
        if inst.completed is None:
            left = len(inst.pending_required)
            rows.append(
                {
                    "checklist": c.id,
                    "period": c.period,
                    "instance": instance,
                    "state": f"in progress, {left} required pending",
                }
            )
    if as_json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("nothing due: every checklist has a completed instance for its current period")
    else:
        for r in rows:
            print(f"{r['checklist']:<24} {r['instance']:<12} {r['state']}")
    return EXIT_OK


def render_status(inst: cl.Instance, fmt: str, *, history: bool = False) -> str:
    rows = [
        {
            "item": i.id,
            "title": i.title,
            "required": i.required,
            "state": i.state,
            "waiting": i.waiting,
            "who": i.performer,
            "when": i.when,
            "signatures": [
                {
                    k: s[k]
                    for k in ("by", "user", "host", "at", "meaning", "note", "evidence_sha256")
                }
                for s in i.signatures
            ],
            "reason": i.reason,
            "evidence": i.evidence,
            "evidence_sha256": i.evidence_sha256,
        }
        for i in inst.items.values()
    ]
    required = [i for i in inst.items.values() if i.required]
    settled = sum(i.state in ("done", "skipped") for i in required)
    closed = inst.completed
    if fmt == "json":
        doc: dict[str, Any] = {
            "checklist": inst.checklist,
            "instance": inst.instance,
            "period": inst.period,
            "started": {"by": inst.started["by"], "at": inst.started["at"]},
            "completed": {"by": closed["by"], "at": closed["at"], "note": closed["note"]}
            if closed
            else None,
            "progress": {"settled": settled, "required": len(required)},
            "items": rows,
        }
        if history:
            doc["history"] = [h for i in inst.items.values() for h in i.history]
        return json.dumps(doc, indent=2) + "\n"
    width = 20
    filled = round(width * settled / len(required)) if required else width
    bar = (
        f"[{'#' * filled}{'-' * (width - filled)}] {settled}/{len(required)} required items settled"
    )
    state = f"completed by {closed['by']} at {closed['at']}" if closed else "open"
    head = f"{inst.title} - {inst.checklist} {inst.instance} ({state})"
    table = [
        [
            i.id + ("" if i.required else " (optional)"),
            i.state + (f": {i.waiting}" if i.waiting else ""),
            _who_text(i),
            i.when or "",
            _evidence_text(i.evidence or {}) or (f"skipped: {i.reason}" if i.reason else ""),
        ]
        for i in inst.items.values()
    ]
    header = ["item", "state", "who", "when", "evidence"]
    if fmt == "md":
        lines = [f"# {head}", "", bar, "", "| " + " | ".join(header) + " |", "|" + "---|" * 5]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table]
    else:
        widths = [max(len(x) for x in col) for col in zip(header, *table, strict=False)]
        fmt_row = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [head, bar, "", fmt_row.format(*header).rstrip()]
        lines += [fmt_row.format(*row).rstrip() for row in table]
    if history:
        lines += ["", "history:"]
        for i in inst.items.values():
            lines += [f"  {h['at']}  {h['event']:<13} {i.id}  by {h['by']}" for h in i.history]
    return "\n".join(lines) + "\n"


def _who_text(i: cl.ItemState) -> str:
    signers = [f"{s['by']} ({s['meaning']})" for s in i.signatures]
    parts = [i.performer] if i.performer and i.kind != "manual" else []
    return ", ".join([*(p for p in parts if p), *signers])


def _evidence_text(ev: dict[str, Any]) -> str:
    if "error" in ev:
        return str(ev["error"])
    if "run_id" in ev:
        return f"run {ev['run_id']} ({ev.get('outcome')}, exit {ev.get('exit_code')})"
    if "stdout_sha256" in ev:
        return f"exit {ev['exit_code']}, output sha256 {ev['stdout_sha256'][:12]}"
    return ""
