"""`runbook checklist start|run|sign|skip|status|complete|due`.

Every command reads the instance's journal (verified first: a broken chain is exit 4), decides,
and appends one record per fact under a lock, so two people signing at once cannot both pass a
check that only one of them should. The clock is a parameter (`now`) so that tests can stand at
period boundaries.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from runner.audit.identity import label
from runner.audit.journal import current_actor
from runner.checklists import definition as cl
from runner.checklists import state as cs
from runner.checklists.signoffs import policy_shortfalls, signed_record
from runner.commands.checklist_journal import (
    appending_to,
    ensure_open,
    evidence_text,
    open_instance,
    read,
    render_status,
    who,
)
from runner.commands.checklist_run import run_items
from runner.errors import EXIT_OK, UsageError
from runner.termsafe import neutralise


def dispatch(args: argparse.Namespace, state_dir: Path, *, now: dt.datetime | None = None) -> int:
    when = now or cl.now_local()
    clock = cl.ticking(when)  # `when` picks the instance; the clock times what happens after
    action = args.checklist_command
    if action == "due":
        return due(state_dir, now=when, as_json=args.json or args.format == "json")
    c = cl.load(args.name)
    instance = _instance(c, args.period, when)
    key = args.signing_key  # the global --signing-key; else RUNBOOK_SIGNING_KEY signs ledger seals
    if action == "start":
        return start(c, instance, state_dir, by=args.by, now=when, signing_key=key)
    if action == "run":
        return run_items(
            c, instance, state_dir, args.items, inventory=args.inventory, by=args.by,
            yes=args.yes, quiet=args.quiet, clock=clock, signing_key=key,
        )  # fmt: skip
    if action == "sign":
        return sign(
            c, instance, state_dir, args.item, by=args.by, meaning=args.meaning,
            note=args.note, now=when, signing_key=key, ssh_key=args.ssh_key,
        )  # fmt: skip
    if action == "skip":
        return skip(
            c, instance, state_dir, args.item, reason=args.reason, by=args.by, now=when,
            signing_key=key,
        )  # fmt: skip
    if action == "status":
        fmt = "json" if args.json else args.format
        return status(c, instance, state_dir, fmt=fmt, history=args.history)
    if action == "complete":
        return complete(
            c, instance, state_dir, by=args.by, note=args.note, now=when, signing_key=key,
            ssh_key=args.ssh_key,
        )  # fmt: skip
    raise AssertionError(action)  # pragma: no cover


def _instance(c: cl.Checklist, given: str | None, now: dt.datetime) -> str:
    if given:
        return cl.check_instance(c.period, given)
    return cl.current_period(c.period, now)


def start(
    c: cl.Checklist,
    instance: str,
    state_dir: Path,
    *,
    by: str | None,
    now: dt.datetime,
    signing_key: str | None = None,
) -> int:
    path = cs.journal_path(state_dir, c.id, instance)
    with appending_to(path, state_dir, signing_key) as journal:
        if journal.seq:  # someone started it (under the lock, so not at the same time as us)
            inst = read(path)
            print(
                f"{c.id} {instance}: already started by {inst.started['by']} at {inst.started['at']}"
            )
            return EXIT_OK
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
                "by": who(by),
                "at": cl.utc_text(now),
            },
        )
    print(f"{c.id} {instance}: started ({len(c.items)} items); audit log: {path}")
    return EXIT_OK


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
    signing_key: str | None = None,
    ssh_key: str | None = None,
) -> int:
    with open_instance(c, instance, state_dir, signing_key) as (journal, inst):
        ensure_open(inst)
        st = inst.item(item_id, c.ids)
        wanted = meaning or st.meaning or "performed"
        if st.state == "failed":
            raise UsageError(
                f"{st.id} failed ({evidence_text(st.evidence or {})}); re-run it "
                f"(runbook checklist run {c.id} {st.id}) or skip it with a reason"
            )
        if st.kind != "manual" and st.evidence is None and st.state != "skipped":
            raise UsageError(f"{st.id} has not run yet: runbook checklist run {c.id} {st.id}")
        actor = current_actor()
        record = signed_record(
            {
                "vouches": "item.signed",
                "checklist": c.id,
                "instance": instance,
                "item": st.id,
                "user": actor["user"],
                "host": actor["host"],
                "at": cl.utc_text(now),
                "meaning": wanted,
                "note": note,
                "evidence_sha256": st.evidence_sha256,
            },
            key=ssh_key,
            by=by,
        )
        signer = record["by"]
        if st.second_person and st.performer == signer and wanted == st.meaning:
            raise UsageError(
                f"{st.id} needs a second person: {signer} performed it and cannot also sign "
                f"it as {wanted}"
            )
        journal.append("item.signed", record)
    after = read(cs.journal_path(state_dir, c.id, instance)).items[st.id]
    print(
        f"{st.id}: signed by {label(record)} ({wanted}); now {after.state} {after.waiting}".rstrip()
    )
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
    signing_key: str | None = None,
) -> int:
    if not reason.strip():
        raise UsageError("a skip needs a reason")
    with open_instance(c, instance, state_dir, signing_key) as (journal, inst):
        ensure_open(inst)
        item = inst.item(item_id, c.ids)
        journal.append(
            "item.skipped",
            {"item": item.id, "reason": reason, "by": who(by), "at": cl.utc_text(now)},
        )
    print(f"{item.id}: skipped by {who(by)}: {reason}")
    return EXIT_OK


def complete(
    c: cl.Checklist,
    instance: str,
    state_dir: Path,
    *,
    by: str | None,
    note: str | None,
    now: dt.datetime,
    signing_key: str | None = None,
    ssh_key: str | None = None,
) -> int:
    with open_instance(c, instance, state_dir, signing_key) as (journal, inst):
        ensure_open(inst)
        pending = inst.pending_required
        detail = [f"{i} ({inst.items[i].state}: {inst.items[i].waiting or '-'})" for i in pending]
        detail += policy_shortfalls(c.id, inst)
        if detail:
            raise UsageError(
                f"{c.id} {instance} cannot be completed: pending required items: "
                + "; ".join(detail)
            )
        record = signed_record(
            {
                "vouches": "checklist.completed",
                "checklist": c.id,
                "instance": instance,
                "at": cl.utc_text(now),
                "meaning": "completed",
                "note": note,
                "items": {
                    i.id: {"state": i.state, "evidence_sha256": i.evidence_sha256}
                    for i in inst.items.values()
                },
            },
            key=ssh_key,
            by=by,
        )
        journal.append("checklist.completed", record)
    print(f"{c.id} {instance}: completed by {label(record)}")
    return EXIT_OK


def status(
    c: cl.Checklist, instance: str, state_dir: Path, *, fmt: str, history: bool = False
) -> int:
    path = cs.journal_path(state_dir, c.id, instance)
    if not path.exists():
        raise UsageError(f"{c.id} {instance} is not started: runbook checklist start {c.id}")
    sys.stdout.write(neutralise(render_status(read(path), fmt, history=history)))
    return EXIT_OK


def due(state_dir: Path, *, now: dt.datetime, as_json: bool = False) -> int:
    rows: list[dict[str, str]] = []
    from runner.format.loader import discover

    for path in discover("checklist"):
        c = cl.load(str(path))
        if c.period == "once":
            continue
        instance = cl.current_period(c.period, now)
        jpath = cs.journal_path(state_dir, c.id, instance)
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
