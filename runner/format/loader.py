"""Find and load runbook files: by id on the search path or by path, schema-checked, once each.
The semantic checks after the schema are semantics.py's.

Every problem of a file is reported at once, each with its `file:line:col: key.path`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runner.errors import InvalidInput, Location, Problem
from runner.format import schema
from runner.format.construct import runbook_from_document
from runner.format.model import Runbook
from runner.format.source import load_file
from runner.format.suggest import did_you_mean


def search_path(kind: str) -> list[Path]:
    """Where runbooks (or checklists) are found: each $RUNBOOK_PATH entry's runbooks/ (or
    checklists/) folder, or the entry itself when it has no such folder; else ./runbooks."""
    env = os.environ.get("RUNBOOK_PATH")
    folder = "runbooks" if kind == "runbook" else "checklists"
    if env:
        roots = [Path(p) for p in env.split(os.pathsep) if p]
        return [r / folder if (r / folder).is_dir() else r for r in roots]
    return [Path(folder)]


_TOP_KEY = re.compile(r"^(runbook|checklist):", re.M)


def discover(kind: str) -> list[Path]:
    """Files of this kind on the search path, first of each name. A file is of the kind its
    top-level key names, so a RUNBOOK_PATH entry holding both kinds side by side
    (`RUNBOOK_PATH=dir/runbooks`) lists each file once, as what it is."""
    found: dict[str, Path] = {}
    for root in search_path(kind):
        if root.is_dir():
            for p in sorted(root.glob("*.y*ml")):
                if p.is_file() and _kind_of(p) in (kind, None):
                    found.setdefault(p.stem, p)
    return sorted(found.values())


def _kind_of(path: Path) -> str | None:
    try:
        m = _TOP_KEY.search(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return m.group(1) if m else None


def locate(ref: str, kind: str, extra_dirs: Sequence[Path] = ()) -> Path | None:
    """The file a reference names: a path as it is, else `<ref>.yaml` or `<ref>.yml` in
    `extra_dirs` then on the search path (a runbook's or a checklist's); None if nowhere."""
    p = Path(ref)
    if p.suffix in (".yaml", ".yml") or os.sep in ref:
        return p
    for root in [*extra_dirs, *search_path(kind)]:
        for ext in (".yaml", ".yml"):
            if (root / f"{ref}{ext}").is_file():
                return root / f"{ref}{ext}"
    return None


@dataclass
class Catalog:
    """Loads runbooks by id or path, once each; knows where `call:` targets live."""

    extra_dirs: list[Path] = field(default_factory=list)
    _cache: dict[Path, Runbook] = field(default_factory=dict)

    def resolve(self, ref: str) -> Path:
        found = locate(ref, "runbook", self.extra_dirs)
        if found is not None:
            return found
        places = ", ".join(str(r) for r in [*self.extra_dirs, *search_path("runbook")])
        hint = did_you_mean(ref, [p.stem for p in discover("runbook")])
        raise InvalidInput(
            [Problem(Location(ref), f"no runbook named '{ref}'{hint} (looked in {places})")]
        )

    def load(self, ref: str) -> Runbook:
        """Schema-valid Runbook; raises InvalidInput with every schema problem of the file."""
        path = self.resolve(ref).resolve()
        if path in self._cache:
            return self._cache[path]
        doc = load_file(path)
        problems = schema.validate(doc, "runbook")
        if problems:
            raise InvalidInput(problems)
        digest = hashlib.sha256(doc.text.encode("utf-8")).hexdigest()
        rb = runbook_from_document(doc, digest)
        self._cache[path] = rb
        # called runbooks are looked up next to their caller first
        if path.parent not in self.extra_dirs:
            self.extra_dirs.append(path.parent)
        return rb

    def load_checked(self, ref: str, known: Iterable[str] = ()) -> Runbook:
        """Load and run every semantic check; raises InvalidInput listing all problems."""
        from runner.format.semantics import check

        rb = self.load(ref)
        problems = check(rb, self, known=set(known))
        if problems:
            raise InvalidInput(problems)
        return rb
