"""The methods `@dataclass` generates, compiled once and kept for the next start (`runbook` only).

For each class, the dataclasses module writes the source of its `__init__`, `__repr__`, `__eq__`,
`__hash__` (and, frozen, `__setattr__` and `__delattr__`) and compiles it with `exec`: ~290
small compiles when `runbook run` starts, ~35 ms of every command (a tenth of a short SSH run),
for text that is the same every time. `install()` gives the dataclasses module an `exec` of its
own that looks the compiled code up by its exact source text first; `save()` keeps what had to
be compiled in the start-up cache (diskcache.py), one entry per Python build and -O level.

The result is the same code: an entry is what `compile(text, "<string>", "exec")` made of that
exact text, on this Python, with the flags `exec` uses there (dataclasses.py has no `from
__future__`, so none). A text not in the cache, or any other kind of call, goes to the real
`exec`. The entry is code that will run, so it is read only from a file and folder that belong
to this user and that nobody else may write (as Python trusts its own `__pycache__`); anything
else, or an entry that is not exactly what was written, counts as empty.
"""

from __future__ import annotations

import builtins
import dataclasses
import importlib.util
import marshal
import sys
from types import CodeType
from typing import Any

from runner.format import diskcache

AREA = "dataclass-code"
# All of the runner's ~110 dataclasses make ~440 texts; past this many (texts of edited classes, in
# a development checkout), only what this process used is kept: the file stays under ~1 MB
MAX_ENTRIES = 800
# Entries (one per runbook version and Python build: ~350 KB each) kept side by side, so that two
# installs in use on one machine do not keep replacing each other's
MAX_FILES = 8

_known: dict[str, CodeType] = {}  # read from the cache
_compiled: dict[str, CodeType] = {}  # compiled by this process
_used: set[str] = set()
_counts = {"cached": 0, "compiled": 0}


def _key() -> str:
    magic = importlib.util.MAGIC_NUMBER.hex()
    return diskcache.key(AREA, sys.version, magic, str(sys.flags.optimize))


def _exec(source: Any, globals: Any = None, locals: Any = None, /, **kw: Any) -> None:
    """builtins.exec, taking the compiled code of a known source text from the cache."""
    if not isinstance(source, str) or globals is None or kw:
        if globals is None:  # as exec itself does: the caller's namespaces
            caller = sys._getframe(1)
            globals = caller.f_globals
            locals = caller.f_locals if locals is None else locals
        return builtins.exec(source, globals, locals, **kw)
    code = _known.get(source)
    if code is not None:
        _counts["cached"] += 1
    else:
        code = _compiled.get(source)
        if code is None:  # (a text can come twice: a second class with the same fields)
            code = _compiled[source] = compile(source, "<string>", "exec", dont_inherit=True)
            _counts["compiled"] += 1
    _used.add(source)
    return builtins.exec(code, globals, locals)


def install() -> None:
    """Read the cache and hand dataclasses our `exec` (before the runner's modules import)."""
    payload = diskcache.read_bytes(AREA, _key(), private=True)
    if payload is not None:
        try:
            table = marshal.loads(payload)
        except (EOFError, ValueError, TypeError):
            table = None
        if isinstance(table, dict):
            _known.update(
                (k, v) for k, v in table.items() if isinstance(k, str) and isinstance(v, CodeType)
            )
    dataclasses.exec = _exec  # type: ignore[attr-defined]  # its global `exec` is looked up here first


def save() -> None:
    """Keep what this process had to compile (nothing to do when the cache had it all)."""
    if not _compiled:
        return
    table = {**_known, **_compiled}
    if len(table) > MAX_ENTRIES:
        table = {k: v for k, v in table.items() if k in _used}
    diskcache.write_bytes(AREA, _key(), marshal.dumps(table), most=MAX_FILES)
    _known.update(_compiled)
    _compiled.clear()


def stats() -> dict[str, int]:
    """In this process: how many texts were found in the cache, how many had to be compiled."""
    return dict(_counts)
