"""Secrets -> `***`, in one place, before anything is displayed or written.

A secret is masked in every form the product itself derives from it: as written, shell-quoted
(alone, or inside a larger quoted value, where each `'` becomes `'"'"'`), URL-encoded (`|
urlencode`), JSON-escaped (`| tojson`), as Python's repr writes it (Jinja's error messages quote a
key so); and in an output excerpt cut through the middle of a secret (the 4 KiB head and tail),
the part of it that is left.
"""

from __future__ import annotations

import json
import shlex
import urllib.parse
from collections.abc import Iterable
from typing import Any

MASK = "***"


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._needles: list[str] = []
        for s in secrets:
            self.add(s)

    def add(self, secret: str) -> None:
        if not secret:
            return
        for form in _forms(secret):
            if form and form not in self._needles:
                self._needles.append(form)
        # longest first, so a quoted form is masked whole rather than around its inner value
        self._needles.sort(key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._needles)

    def text(self, value: str) -> str:
        for needle in self._needles:
            if needle in value:
                value = value.replace(needle, MASK)
        return value

    def value(self, value: Any) -> Any:
        """Mask every string inside a JSON-shaped value."""
        if not self._needles:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            out = {k: self.value(v) for k, v in value.items()}
            if isinstance(out.get("head"), str) and isinstance(out.get("tail"), str):
                # an output digest (attempts.digest) whose head was cut at 4 KiB: the cut may run
                # through a secret, leaving its start at the head's end, its end at the tail's start
                out["head"], out["tail"] = self.cut_end(out["head"]), self.cut_start(out["tail"])
            return out
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def cut_end(self, text: str) -> str:
        """`text` was cut after its end: a secret's beginning left there is masked too."""
        for needle in self._needles:
            for k in range(min(len(needle) - 1, len(text)), 0, -1):
                if text.endswith(needle[:k]):
                    return text[:-k] + MASK
        return text

    def cut_start(self, text: str) -> str:
        """`text` was cut before its start: a secret's end left there is masked too."""
        for needle in self._needles:
            for k in range(min(len(needle) - 1, len(text)), 0, -1):
                if text.startswith(needle[-k:]):
                    return MASK + text[k:]
        return text

    def pending(self, text: str) -> int:
        """How many characters at the end of `text` could be the start of a secret (in one of
        its forms) that goes on after it: 0 if none. `text` is masked already."""
        held = 0
        for needle in self._needles:
            i = text.find(needle[0], max(len(text) - len(needle) + 1, 0))
            while i != -1 and len(text) - i > held:
                if needle.startswith(text[i:]):
                    held = len(text) - i
                    break
                i = text.find(needle[0], i + 1)
        return held


def _forms(secret: str) -> set[str]:
    quote = urllib.parse.quote
    forms = {
        secret,
        shlex.quote(secret),  # render.py's quoting of a value on its own
        secret.replace("'", "'\"'\"'"),  # ... and of a larger value the secret is part of
        quote(secret, safe="/"),  # Jinja's `| urlencode` of a string
        quote(secret, safe=""),
        urllib.parse.quote_plus(secret),  # `| urlencode` of a mapping (a query string)
        json.dumps(secret)[1:-1],  # JSON-escaped
        _htmlsafe(json.dumps(secret)[1:-1]),  # `| tojson`
        repr(secret)[1:-1],  # Python's repr: Jinja's messages quote a key with it (`table[token]`)
    }
    return forms


def _htmlsafe(text: str) -> str:
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        text = text.replace(ch, esc)
    return text
