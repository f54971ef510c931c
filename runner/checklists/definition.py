"""Checklists: the model (a check item is a runbook Check, model.py) and the period math. An
instance's state, derived from its journal, is state.py's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import InvalidInput, UsageError
from runner.format import schema
from runner.format.construct import check_from
from runner.format.loader import discover, locate
from runner.format.model import Check
from runner.format.source import load_file
from runner.format.suggest import did_you_mean

PERIODS = ("daily", "weekly", "monthly", "quarterly", "once")
_ONCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


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

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(it.id for it in self.items)

    def definition(self, item_id: str) -> Item | None:
        """The file's item `item_id`, if the file (as it is now) has one. Which items an instance
        has is the instance's (state.Instance.item); the file says how they run."""
        return next((it for it in self.items if it.id == item_id), None)


def resolve(ref: str) -> Path:
    found = locate(ref, "checklist")
    if found is not None:
        return found
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
        items.append(
            Item(
                id=raw["id"],
                title=raw["title"],
                description=raw.get("description", "").strip(),
                required=raw.get("required", True),
                runbook=raw.get("runbook"),
                with_=tuple(sorted(raw.get("with", {}).items())),
                check=check_from(raw["check"], ("items", i, "check"), raw["id"])
                if "check" in raw
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
