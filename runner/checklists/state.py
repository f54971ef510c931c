"""A checklist instance's state, derived from its journal and nothing else.

An instance (one checklist for one period) is one hash-chained journal,
`<state>/checklists/<checklist>/<checklist>-<instance>.jsonl`, whose run_id is the file's stem.
Nothing is stored anywhere else: the state of every item is recomputed from the journal's
records each time (`derive`), so a re-run or a second signature appends and the history keeps
both. The `checklist.started` record carries the item definitions that matter for sign-off, so
the state can be rebuilt from the log alone, even after the checklist file has changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.audit.journal import canonical
from runner.errors import UsageError


def instance_id(checklist: str, instance: str) -> str:
    return f"{checklist}-{instance}"


def journal_path(state_dir: Path, checklist: str, instance: str) -> Path:
    # audit.verify_run requires the run_id to equal the file's stem
    return state_dir / "checklists" / checklist / f"{instance_id(checklist, instance)}.jsonl"


def evidence_hash(evidence: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(evidence)).hexdigest()


@dataclass
class ItemState:
    id: str
    title: str
    kind: str
    required: bool
    meaning: str | None
    second_person: bool
    state: str = "pending"  # pending | done | failed | skipped
    performer: str | None = None
    when: str | None = None
    evidence: dict[str, Any] | None = None
    evidence_sha256: str | None = None
    reason: str | None = None
    signatures: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    waiting: str = ""  # what a pending item still needs, for people

    def valid_signers(self) -> list[str]:
        """Signers of the required meaning, over the current evidence, who may sign it."""
        return [
            s["by"]
            for s in self.signatures
            if s["meaning"] == self.meaning
            # a manual item's first signature is its performance: the evidence is that record
            and self.evidence_sha256 in (s["evidence_sha256"], s["hash"])
            and not (self.second_person and s["by"] == self.performer)
        ]


@dataclass
class Instance:
    checklist: str
    instance: str
    period: str
    title: str
    started: dict[str, Any]
    items: dict[str, ItemState]
    completed: dict[str, Any] | None = None

    def item(self, item_id: str, in_file: Container[str] = ()) -> ItemState:
        """The instance's item `item_id`: the items it started with are its items, whatever the
        checklist file says now. `in_file`: the file's item ids, to say why an id is unknown."""
        found = self.items.get(item_id)
        if found is None:
            added = (
                ": it was added to the checklist file after this instance started"
                if item_id in in_file
                else ""
            )
            raise UsageError(
                f"{self.checklist} {self.instance} has no item '{item_id}'{added} "
                f"(items: {', '.join(self.items)})"
            )
        return found

    @property
    def pending_required(self) -> list[str]:
        return [
            i.id for i in self.items.values() if i.required and i.state not in ("done", "skipped")
        ]


def derive(records: list[dict[str, Any]]) -> Instance:
    """The instance's state from its journal records alone (the only source of truth)."""
    if not records or records[0]["event"] != "checklist.started":
        raise UsageError("not a checklist journal (the first record is not checklist.started)")
    start = records[0]
    items = {
        s["id"]: ItemState(
            id=s["id"],
            title=s["title"],
            kind=s["kind"],
            required=s["required"],
            meaning=(s["signoff"] or {}).get("meaning"),
            second_person=bool((s["signoff"] or {}).get("second_person")),
        )
        for s in start["items"]
    }
    inst = Instance(
        start["checklist"], start["instance"], start["period"], start["title"], start, items
    )
    for rec in records[1:]:
        event = rec["event"]
        if event == "checklist.completed":
            inst.completed = rec
            continue
        it = items.get(rec.get("item", ""))
        if it is None:
            continue
        it.history.append(rec)
        if event == "item.ran":
            it.state = "done" if rec["ok"] else "failed"
            it.performer, it.when = rec["by"], rec["at"]
            it.evidence, it.evidence_sha256 = rec["evidence"], rec["evidence_sha256"]
            it.reason = None
        elif event == "item.skipped":
            it.state, it.reason = "skipped", rec["reason"]
            it.performer, it.when = rec["by"], rec["at"]
            it.evidence_sha256 = rec["hash"]
        elif event == "item.signed":
            it.signatures.append(rec)
            if it.kind == "manual" and it.performer is None:
                # the first signer performed a manual item; a second person signs what they did
                it.performer, it.when = rec["by"], rec["at"]
                it.evidence = {"performed_by": rec["by"], "record": rec["hash"]}
                it.evidence_sha256 = rec["hash"]
    for it in items.values():
        _settle(it)
    return inst


def _settle(it: ItemState) -> None:
    if it.state in ("failed", "skipped"):
        return
    ran = it.kind == "manual" or it.state == "done"
    if not ran:
        it.state, it.waiting = "pending", "not run yet"
        return
    if it.meaning is None:
        it.state = "done"
        return
    signers = it.valid_signers()
    if it.kind == "manual" and it.performer is None:
        it.state, it.waiting = "pending", f"needs a person to sign ({it.meaning})"
    elif signers:
        it.state, it.waiting = "done", ""
        it.when = next(s["at"] for s in reversed(it.signatures) if s["by"] in signers)
    else:
        other = " by someone other than " + str(it.performer) if it.second_person else ""
        it.state, it.waiting = "pending", f"needs a signature ({it.meaning}){other}"
