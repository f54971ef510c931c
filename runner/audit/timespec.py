"""`--since`/`--until` values -> the UTC timestamps audit records carry, or a UsageError naming
the accepted forms (a value we cannot read must not quietly match nothing)."""

from __future__ import annotations

import datetime as dt
import re

from runner.errors import UsageError

FORMS = (
    "2026-11-24, 2026-11-24T18:00, 2026-11-24T18:00:00 (UTC, a trailing Z allowed), "
    "today, yesterday, now, or an age: 30m, 12h, 3d, 2w"
)
_AGE = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse(text: str, *, flag: str, end: bool = False, now: dt.datetime | None = None) -> str:
    """A timestamp like `2026-11-24T18:00:00.000000Z`. With `end`, a date alone means the end
    of that day, so `--until 2026-11-24` includes the whole day."""
    now = now or dt.datetime.now(dt.timezone.utc)
    value = text.strip().lower()
    day = dt.timedelta(days=1)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    when: dt.datetime | None = None
    if value == "now":
        when = now
    elif value in ("today", "yesterday"):
        when = midnight - (day if value == "yesterday" else dt.timedelta())
        when += day - dt.timedelta(microseconds=1) if end else dt.timedelta()
    elif m := _AGE.match(value):
        when = now - dt.timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    else:
        raw = text.strip().removesuffix("Z").removesuffix("z")
        try:
            parsed = dt.datetime.fromisoformat(raw)
        except ValueError:
            raise UsageError(f"{flag} {text!r}: not a time; accepted: {FORMS}") from None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
        when = parsed.replace(tzinfo=dt.timezone.utc)
        if end and "T" not in raw and " " not in raw:
            when += day - dt.timedelta(microseconds=1)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
