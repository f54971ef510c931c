"""Checklists: the model (a check item is a runbook Check, model.py) and the period math. An
instance's state, derived from its journal, is state.py's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from collections.abc import Callable
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


def ticking(start: dt.datetime) -> Callable[[], dt.datetime]:
    """A clock that reads `start` now and then moves on with real (monotonic) time: a command
    given its `now` (a test standing at a period boundary) still records when each of its later
    steps happened, and in the same order as they did."""
    began = time.monotonic()
    return lambda: start + dt.timedelta(seconds=time.monotonic() - began)


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


# The one name of each period kind's instances (what current_period writes), as a pattern, the
# form people are told, and an example. Only this form: date.fromisoformat also reads 2026-W48-1
# as 2026-11-23, which made a second daily instance of one day under a name `due` never checks.
_FORMS = {
    "daily": (r"([0-9]{4})-([0-9]{2})-([0-9]{2})", "YYYY-MM-DD", "2026-11-24"),
    "weekly": (r"([0-9]{4})-W([0-9]{2})", "YYYY-Www, an ISO week", "2026-W48"),
    "monthly": (r"([0-9]{4})-([0-9]{2})", "YYYY-MM", "2026-11"),
    "quarterly": (r"([0-9]{4})-Q([1-4])", "YYYY-Qn", "2026-Q4"),
    "once": (
        r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}",
        "a name of letters, digits, . _ -",
        "INC-20261124-1430",
    ),
}


def check_instance(period: str, name: str) -> str:
    """Refuse an instance name that is not the canonical name of a real period of this kind
    (2026-W54, 2026-13, 2026-02-30, 2026-W48-1 for a day...)."""
    pattern, form, example = _FORMS[period]
    m = re.fullmatch(pattern, name)
    if m is None or not _real(period, [int(g) for g in m.groups()]):
        raise UsageError(f"'{name}' is not a {period} period: expected {form} (e.g. {example})")
    return name


def _real(period: str, n: list[int]) -> bool:
    """Whether a well-formed name's numbers name a real period (no 2026-02-30, 2027-W53)."""
    try:
        if period == "daily":
            dt.date(n[0], n[1], n[2])
        elif period == "weekly":
            dt.date.fromisocalendar(n[0], n[1], 1)
        elif period == "monthly":
            dt.date(n[0], n[1], 1)
    except ValueError:
        return False
    return True
