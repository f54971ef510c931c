"""Did-you-mean: the closest known names to a mistyped one (`helth-check` -> `health-check`)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """` (did you mean 'x'?)`, or `` when nothing is close; ready to append to a message."""
    close = difflib.get_close_matches(word, list(known), n=2, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"
