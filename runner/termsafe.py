"""Command output made safe to read: what a host printed reaches an auditor's terminal, browser
or spreadsheet only as visible text.

A recorded stdout head may hold escape sequences (colours, a window title, clear-screen, cursor
moves), a carriage return that hides what precedes it on a terminal, or a bidi override that
shows text in another order than it is. `audit show`, the exports and the report print each of
them as a visible escape (`\\x1b`, `\\r`, `\\u202e`) instead: the evidence stays readable and
nothing it contains can repaint what the auditor sees. The journal itself keeps the bytes as
they were (its hashes cover them).
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

# C0 controls but tab and newline, DEL, C1 controls; bidi embeddings, overrides and isolates;
# the line and paragraph separators (some terminals and editors break lines at them).
# Compiled when first needed (~0.5 ms of every run's start otherwise): the console's lines
# rarely need more than is_safe's quick checks.
_UNSAFE = "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
# the same, for ASCII text: checked by bytes.translate, ~5x faster than the regex (live output
# of `run` goes through here chunk by chunk)
_ASCII_UNSAFE = bytes([*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F])


@functools.cache
def _unsafe() -> re.Pattern[str]:
    return re.compile(_UNSAFE)


def is_safe(text: str) -> bool:
    """Nothing in `text` that neutralise would change."""
    if text.isascii():
        data = text.encode("ascii")
        return len(data.translate(None, _ASCII_UNSAFE)) == len(data)
    if text.isprintable():  # no control, format (bidi) or separator character: the usual line
        return True
    return _unsafe().search(text) is None


def _visible(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def neutralise(text: str) -> str:
    """Every unsafe character as a visible escape; tabs, newlines and all else unchanged."""
    return text if is_safe(text) else _unsafe().sub(_visible, text)


def neutralise_all(value: Any) -> Any:
    """The same, through every string of a JSON-like value (dict keys included)."""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, dict):
        return {neutralise_all(k): neutralise_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [neutralise_all(v) for v in value]
    return value


def one_line(value: Any, keep: tuple[str, ...] = ()) -> Any:
    """A recorded value for a line of a listing: every line break in its strings as a visible
    `\\n`, through dicts and lists (but the keys in `keep`), so that a typed ticket or reason
    cannot print what looks like lines of the listing itself."""
    if isinstance(value, str):
        return value.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")
    if isinstance(value, dict):
        return {k: v if k in keep else one_line(v, keep) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [one_line(v, keep) for v in value]
    return value


def _json_escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def json_safe(text: str) -> str:
    """JSON text with every unsafe character written as a `\\uXXXX` escape: safe to print, and
    it decodes to exactly the same values (outside strings JSON has no such characters, and
    inside one that escape means the character itself)."""
    return _unsafe().sub(_json_escape, text)


def json_text(value: Any, **kwargs: Any) -> str:
    """`json.dumps` made safe to print (json_safe)."""
    return json_safe(json.dumps(value, ensure_ascii=False, **kwargs))
