"""A checklist instance's journal: read (verified), opened for a change under a lock, shown."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from runner.audit import identity, signing
from runner.audit.chain import verify_run
from runner.audit.journal import Journal, current_actor
from runner.audit.ledger import appending
from runner.checklists import definition as cl
from runner.checklists import state as cs
from runner.errors import AuditError, UsageError


def who(by: str | None) -> str:
    return by or current_actor()["user"]


def read(path: Path, signing_key: str | None = None) -> cs.Instance:
    """The instance as the records the ledger vouches for say it is.

    A record no seal vouches for (with a signing key configured: no seal signed by it) was
    appended by hand, or by a command killed before it sealed: it does not count, and stderr says
    so. Otherwise a forged `item.signed` would show as done and let `complete` pass.
    """
    from runner.audit.integrity import vouched

    verdict = verify_run(path, keep=True)
    if not verdict.ok:
        raise AuditError(f"the checklist's audit log does not verify: {verdict.line()}")
    signer = signing.load_signer(signing_key)
    state_dir = path.parents[2]  # <state>/checklists/<id>/<instance>.jsonl
    ok = vouched(state_dir, path, verdict, signer.public_b64 if signer else None)
    ignored = [e["seq"] for e in verdict.events if e["seq"] not in ok]
    if ignored:
        print(
            f"warning: {path.name}: record(s) {', '.join(map(str, ignored))} not vouched for by "
            "the ledger (appended by hand, or by a command stopped before it sealed): ignored",
            file=sys.stderr,
        )
    return cs.derive([e for e in verdict.events if e["seq"] in ok])


@contextmanager
def open_instance(
    c: cl.Checklist, instance: str, state_dir: Path, signing_key: str | None = None
) -> Iterator[tuple[Journal, cs.Instance]]:
    """The instance's journal and its current state, under the journal's lock; sealed in the
    ledger when closed, still under the lock, if anything was appended."""
    path = cs.journal_path(state_dir, c.id, instance)
    if not path.exists():
        flag = f" --period {instance}"
        raise UsageError(f"{c.id} {instance} is not started: runbook checklist start {c.id}{flag}")
    with appending_to(path, state_dir, signing_key) as journal:
        yield journal, read(path, signing_key)


def appending_to(
    path: Path, state_dir: Path, signing_key: str | None
) -> AbstractContextManager[Journal]:
    """An instance's journal opened to append under its lock, sealed in the ledger when closed:
    the one way checklist commands write, so none can skip the seal. What is read inside is what
    the next record chains onto: two people signing at once cannot both pass a check that only
    one of them should (ledger.appending)."""
    return appending(path, "checklist", state_dir, signing_key)


def ensure_open(inst: cs.Instance) -> None:
    """A completed instance is closed: nothing is appended to it any more."""
    if inst.completed is not None:
        raise UsageError(
            f"{inst.checklist} {inst.instance} was completed by {inst.completed['by']} at "
            f"{inst.completed['at']}; a closed instance does not change"
        )


def render_status(inst: cs.Instance, fmt: str, *, history: bool = False) -> str:
    rows = [
        {
            "item": i.id,
            "title": i.title,
            "required": i.required,
            "state": i.state,
            "waiting": i.waiting,
            "who": i.performer,
            "when": i.when,
            # whole, signature included, so that an export can be verified again (identity.py)
            "signatures": [
                {**identity.body(s), identity.SHOWN: identity.SIG in s} for s in i.signatures
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
    state = f"completed by {identity.label(closed)} at {closed['at']}" if closed else "open"
    head = f"{inst.title} - {inst.checklist} {inst.instance} ({state})"
    table = [
        [
            i.id + ("" if i.required else " (optional)"),
            i.state + (f": {i.waiting}" if i.waiting else ""),
            _who_text(i),
            i.when or "",
            evidence_text(i.evidence or {}) or (f"skipped: {i.reason}" if i.reason else ""),
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
            lines += [
                f"  {h['at']}  {h['event']:<13} {i.id}  by {identity.label(h)}" for h in i.history
            ]
    return "\n".join(lines) + "\n"


def _who_text(i: cs.ItemState) -> str:
    signers = [f"{identity.label(s)[:-1]}, {s['meaning']})" for s in i.signatures]
    parts = [i.performer] if i.performer and i.kind != "manual" else []
    return ", ".join([*(p for p in parts if p), *signers])


def evidence_text(ev: dict[str, Any]) -> str:
    if "error" in ev:
        return str(ev["error"])
    if "run_id" in ev:
        return f"run {ev['run_id']} ({ev.get('outcome')}, exit {ev.get('exit_code')})"
    if "stdout_sha256" in ev:
        return f"exit {ev['exit_code']}, output sha256 {ev['stdout_sha256'][:12]}"
    return ""
