"""Checklists: the model, the period math, and an instance's state derived from its journal.

An instance (one checklist for one period) is one hash-chained journal,
`<state>/checklists/<checklist>/<checklist>-<instance>.jsonl`, whose run_id is the file's stem.
Nothing is stored anywhere else: the state of every item is recomputed from the journal's
records each time (`derive`), so a re-run or a second signature appends and the history keeps
both. The `checklist.started` record carries the item definitions that matter for sign-off, so
the state can be rebuilt from the log alone, even after the checklist file has changed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import schema
from runner.audit import canonical
from runner.errors import InvalidInput, Location, Problem, UsageError
from runner.loader import discover
from runner.source import load_file

PERIODS = ("daily", "weekly", "monthly", "quarterly", "once")
_ONCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class Check:
    run: str
    exit: tuple[int, ...] = (0,)
    stdout_contains: str | None = None
    timeout: float | None = None


@dataclass(frozen=True)
class Signoff:
    meaning: str
    second_person: bool = False


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    description: str = ""
    required: bool = True
    runbook: str | None = None
    with_: tuple[tuple[str, Any], ...] = ()
    check: Check | None = None
    signoff: Signoff | None = None

    @property
    def kind(self) -> str:
        return "runbook" if self.runbook else "check" if self.check else "manual"

    @property
    def needs(self) -> Signoff | None:
        """The sign-off that completes the item: a manual item always needs a person."""
        if self.signoff is None and self.kind == "manual":
            return Signoff("performed")
        return self.signoff

    def summary(self) -> dict[str, Any]:
        needs = self.needs
        return {
            "id": self.id,
            "title": self.title,
            "kind": self.kind,
            "required": self.required,
            "signoff": {"meaning": needs.meaning, "second_person": needs.second_person}
            if needs
            else None,
        }


@dataclass(frozen=True)
class Checklist:
    id: str
    title: str
    period: str
    items: tuple[Item, ...]
    file: str
    sha256: str
    description: str = ""

    def item(self, item_id: str) -> Item:
        for it in self.items:
            if it.id == item_id:
                return it
        known = ", ".join(i.id for i in self.items)
        raise UsageError(f"checklist '{self.id}' has no item '{item_id}' (items: {known})")


def duration(value: str | float | int | None) -> float | None:
    if value is None or isinstance(value, int | float):
        return None if value is None else float(value)
    unit = {"s": 1, "m": 60, "h": 3600}.get(value[-1:], 1)
    return float(value.rstrip("smh")) * unit


def resolve(ref: str) -> Path:
    p = Path(ref)
    if p.suffix in (".yaml", ".yml") or "/" in ref:
        return p
    for candidate in discover("checklist"):
        if candidate.stem == ref:
            return candidate
    from runner.suggest import did_you_mean

    hint = did_you_mean(ref, [c.stem for c in discover("checklist")])
    raise UsageError(f"no checklist named '{ref}'{hint} (./checklists or RUNBOOK_PATH)")


def load(ref: str) -> Checklist:
    """A schema-valid, semantically checked Checklist; InvalidInput names every problem."""
    path = resolve(ref)
    doc = load_file(path)
    problems = schema.validate(doc, "checklist")
    if problems:
        raise InvalidInput(problems)
    data = doc.data
    if data["checklist"] != path.stem:
        problems.append(
            doc.problem(("checklist",), f"'{data['checklist']}' must equal the file's stem")
        )
    items: list[Item] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["items"]):
        if raw["id"] in seen:
            problems.append(doc.problem(("items", i, "id"), f"duplicate item id '{raw['id']}'"))
        seen.add(raw["id"])
        if "runbook" in raw and "check" in raw:
            problems.append(
                doc.problem(("items", i), "an item has a runbook: or a check:, not both")
            )
        if "with" in raw and "runbook" not in raw:
            problems.append(doc.problem(("items", i, "with"), "with: needs a runbook:"))
        chk = raw.get("check")
        exit_ = chk.get("expect", {}).get("exit", 0) if chk else 0
        items.append(
            Item(
                id=raw["id"],
                title=raw["title"],
                description=raw.get("description", "").strip(),
                required=raw.get("required", True),
                runbook=raw.get("runbook"),
                with_=tuple(sorted(raw.get("with", {}).items())),
                check=Check(
                    run=chk["run"],
                    exit=tuple(exit_) if isinstance(exit_, list) else (exit_,),
                    stdout_contains=chk.get("expect", {}).get("stdout_contains"),
                    timeout=duration(chk.get("timeout")),
                )
                if chk
                else None,
                signoff=Signoff(
                    raw["signoff"]["meaning"], raw["signoff"].get("second_person", False)
                )
                if "signoff" in raw
                else None,
            )
        )
    if problems:
        raise InvalidInput(problems)
    return Checklist(
        id=data["checklist"],
        title=data.get("title", data["checklist"]),
        period=data["period"],
        items=tuple(items),
        file=doc.file,
        sha256=hashlib.sha256(doc.text.encode("utf-8")).hexdigest(),
        description=data.get("description", "").strip(),
    )


# -- periods --------------------------------------------------------------------------------


def now_local() -> dt.datetime:
    return dt.datetime.now().astimezone()


def utc_text(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def current_period(period: str, now: dt.datetime) -> str:
    """The instance name of the period holding `now` (its calendar date, in its own zone)."""
    d = now.date()
    if period == "daily":
        return d.isoformat()
    if period == "weekly":
        iso = d.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if period == "monthly":
        return f"{d.year}-{d.month:02d}"
    if period == "quarterly":
        return f"{d.year}-Q{(d.month - 1) // 3 + 1}"
    raise UsageError("a once-only checklist has no current period: give --period NAME")


def check_instance(period: str, name: str) -> str:
    """Refuse an instance name that is not a real period of this kind (2026-W54, 2026-13...)."""
    try:
        if period == "daily":
            dt.date.fromisoformat(name)
            ok = len(name) == 10
        elif period == "weekly":
            m = re.fullmatch(r"(\d{4})-W(\d{2})", name)
            ok = bool(m) and dt.date.fromisocalendar(int(m[1]), int(m[2]), 1) is not None  # type: ignore[index]
        elif period == "monthly":
            m = re.fullmatch(r"(\d{4})-(\d{2})", name)
            ok = bool(m) and 1 <= int(m[2]) <= 12  # type: ignore[index]
        elif period == "quarterly":
            ok = re.fullmatch(r"\d{4}-Q[1-4]", name) is not None
        else:
            ok = _ONCE_NAME.match(name) is not None
    except ValueError:
        ok = False
    if not ok:
        example = {
            "daily": "2026-11-24",
            "weekly": "2026-W48",
            "monthly": "2026-11",
            "quarterly": "2026-Q4",
            "once": "INC-20261124-1430 (letters, digits, . _ -)",
        }[period]
        raise UsageError(f"'{name}' is not a {period} period (e.g. {example})")
    return name


# -- journals and derived state --------------------------------------------------------------


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


def problem(file: str, message: str) -> InvalidInput:
    return InvalidInput([Problem(Location(file), message)])
