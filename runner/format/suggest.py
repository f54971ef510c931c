"""Did-you-mean: the closest known names to a mistyped one (`helth-check` -> `health-check`)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """` (did you mean 'x'?)`, or `` when nothing is close; ready to append to a message."""
    # one changed letter of a short name (`d2` for `d1`) scores only 0.5
    cutoff = 0.5 if len(word) <= 3 else 0.6
    close = difflib.get_close_matches(word, list(known), n=2, cutoff=cutoff)
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"
