"""Secrets -> `***`, in one place, before anything is displayed or written."""

from __future__ import annotations

import shlex
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
        # the value may appear as written or as the shell-quoted form render.py produced
        for form in {secret, shlex.quote(secret)}:
            if form not in self._needles:
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
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def longest(self) -> int:
        return max((len(n) for n in self._needles), default=0)
