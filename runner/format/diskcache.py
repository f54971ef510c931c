"""A small on-disk cache of what was worked out from a file's exact text, to start faster.

`runbook` reads the same runbook and inventory files again and again; checking them against the
JSON Schema needs jsonschema, whose import and check are ~30 ms of a ~0.3 s run. So the fact that
a text passed the schema (schema.py) is kept in `$XDG_CACHE_HOME/runbook/<area>/` (default
`~/.cache/runbook/`), one file per key. Files' contents are never stored: an inventory may hold
passwords, and a copy in a cache would outlive the file. A key is the SHA-256 of the file's text together with everything else the
result depends on (tool version, the code and the schema that produced it, the installed
library); an edited file, schema or library has a different key, and old entries are simply
never read again (the oldest are removed past `MAX_ENTRIES`).

The cache can only ever save time: every entry carries its key and a SHA-256 of its payload,
and anything unexpected (no such entry, unreadable, truncated, garbage, a read-only or missing
directory) counts as a miss, after which the work is done in full. `RUNBOOK_NO_CACHE=1` turns
it off (nothing is read or written).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from functools import cache
from importlib.machinery import PathFinder
from pathlib import Path

from runner import __version__

NO_CACHE_ENV = "RUNBOOK_NO_CACHE"
MAX_ENTRIES = 1000  # per area; past this, a write removes the older half
_MAGIC = "runbook-cache v1"


def folder(area: str) -> Path | None:
    """$XDG_CACHE_HOME/runbook/AREA (XDG's default ~/.cache), or None when caching is off."""
    if os.environ.get(NO_CACHE_ENV, "") not in ("", "0"):
        return None
    base = os.environ.get("XDG_CACHE_HOME", "")
    try:
        root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    except RuntimeError:  # no home directory to be found
        return None
    return root / "runbook" / area


def key(*parts: str) -> str:
    """A key for these parts (always with the tool version)."""
    h = hashlib.sha256(_MAGIC.encode())
    for part in (__version__, *parts):
        h.update(hashlib.sha256(part.encode("utf-8", "surrogatepass")).digest())
    return h.hexdigest()


@cache
def code(path: str) -> str:
    """The SHA-256 of a source file (a module's `__file__`): editing the code that produced a
    result invalidates it, also in an editable install whose version does not change."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@cache
def installed(package: str) -> str:
    """Which copy of a library is installed (its path, size and mtime), found without importing
    it: an upgrade invalidates what the old one produced."""
    spec = PathFinder.find_spec(package)
    if spec is None or not spec.origin:
        return ""
    st = os.stat(spec.origin)
    return f"{spec.origin}:{st.st_size}:{st.st_mtime_ns}"


def read(area: str, entry_key: str) -> str | None:
    """The text stored under the key, or None (off, missing, or not exactly what was stored)."""
    payload = read_bytes(area, entry_key)
    try:
        return None if payload is None else payload.decode("utf-8", "surrogatepass")
    except ValueError:
        return None


def write(area: str, entry_key: str, payload: str) -> None:
    write_bytes(area, entry_key, payload.encode("utf-8", "surrogatepass"))


def read_bytes(area: str, entry_key: str, *, private: bool = False) -> bytes | None:
    """The bytes stored under the key, or None (off, missing, or not exactly what was stored).

    `private`: only from a file and folder of this user's own that nobody else may write (for
    what will be run as code: dataclasscode.py)."""
    where = folder(area)
    if where is None:
        return None
    try:
        if private and not _ours(os.stat(where)):
            return None
        with open(where / entry_key, "rb") as f:
            if private and not _ours(os.fstat(f.fileno())):
                return None
            head, sep, payload = f.read().partition(b"\n")
    except OSError:  # missing, unreadable
        return None
    digest = hashlib.sha256(payload).hexdigest()
    if not sep or head != f"{_MAGIC} {entry_key} {digest}".encode():
        return None
    return payload


def write_bytes(area: str, entry_key: str, payload: bytes, *, most: int | None = None) -> None:
    """Best effort, atomic (write then rename: a reader never sees half an entry). Past `most`
    entries in the area (default MAX_ENTRIES), the older half goes."""
    where = folder(area)
    if where is None:
        return
    digest = hashlib.sha256(payload).hexdigest()
    entry = where / entry_key
    tmp = where / f".{entry_key}.{os.getpid()}.tmp"
    try:
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp.write_bytes(f"{_MAGIC} {entry_key} {digest}\n".encode() + payload)
        os.replace(tmp, entry)
        _prune(where, MAX_ENTRIES if most is None else most)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _ours(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _prune(where: Path, most: int) -> None:
    entries = list(os.scandir(where))
    if len(entries) <= most:
        return

    def age(e: os.DirEntry[str]) -> float:
        try:
            return e.stat().st_mtime
        except OSError:
            return 0.0

    for e in sorted(entries, key=age)[: len(entries) // 2]:
        Path(e.path).unlink(missing_ok=True)
