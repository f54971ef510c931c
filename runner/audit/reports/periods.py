"""The checklist periods of a report's period that nobody started: the overdue work an auditor
cannot see by reading the journals, since there is none."""

from __future__ import annotations

import datetime as dt

from runner.checklists import definition as checklist
from runner.checklists import state as checklist_state
from runner.errors import Error
from runner.format.loader import discover


def never_started(since: str | None, until: str | None, started: set[str]) -> list[str]:
    """Instance ids (`daily-2026-11-03`) of every period of every daily, weekly, monthly or
    quarterly checklist found (./checklists or RUNBOOK_PATH) that overlaps [since, until], is
    over (not the current one), and has no instance. Without `since` there is no first period
    to count from: nothing is listed."""
    if not since:
        return []
    now = checklist.now_local()
    first = dt.date.fromisoformat(since[:10])
    last = min(dt.date.fromisoformat(until[:10]) if until else now.date(), now.date())
    out: list[str] = []
    for path in discover("checklist"):
        try:
            c = checklist.load(str(path))
        except Error:  # `runbook validate` names what is wrong with it
            continue
        if c.period == "once":
            continue
        current = checklist.current_period(c.period, now)
        day, seen = first, set()
        while day <= last:
            name = checklist.current_period(c.period, dt.datetime.combine(day, dt.time()))
            instance = checklist_state.instance_id(c.id, name)
            if name < current and name not in seen and instance not in started:
                out.append(instance)
            seen.add(name)
            day += dt.timedelta(days=1)
    return out


def days(kind: str, name: str) -> tuple[dt.date, dt.date] | None:
    """The first and last day of a checklist period (`2026-W48`, `2026-11`, `2026-Q4`...)."""
    try:
        if kind == "daily":
            d = dt.date.fromisoformat(name)
            return d, d
        if kind == "weekly":
            year, week = name.split("-W")
            monday = dt.date.fromisocalendar(int(year), int(week), 1)
            return monday, monday + dt.timedelta(days=6)
        if kind in ("monthly", "quarterly"):
            year, part = name.split("-")
            first_month = int(part) if kind == "monthly" else (int(part[1]) - 1) * 3 + 1
            months = 1 if kind == "monthly" else 3
            start = dt.date(int(year), first_month, 1)
            after = dt.date(
                int(year) + (first_month + months - 1) // 12, (first_month + months - 1) % 12 + 1, 1
            )
            return start, after - dt.timedelta(days=1)
    except ValueError:
        return None
    return None  # once: an incident, not a calendar period


def overlaps(kind: str, name: str, since: str | None, until: str | None) -> bool:
    """A checklist instance belongs to a report's period when its own period overlaps it, even
    if it was worked on later (yesterday's checklist, signed this morning)."""
    span = days(kind, name)
    if span is None:
        return False
    return (not since or span[1].isoformat() >= since[:10]) and (
        not until or span[0].isoformat() <= until[:10]
    )
