"""`runbook list`: every runbook and checklist found, one row each: id, kind, title, targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from runner.format.loader import discover

try:  # libyaml: listing reads every file, and only needs a few top-level values
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


def rows() -> list[dict[str, Any]]:
    """Read as plain YAML, without the schema or positions: a broken file is listed (and
    `validate` says what is wrong with it) rather than hiding the others."""
    out = []
    for kind in ("runbook", "checklist"):
        for path in discover(kind):
            out.append(_row(kind, path))
    return out


def _row(kind: str, path: Path) -> dict[str, Any]:
    row: dict[str, Any] = {"id": path.stem, "kind": kind, "title": "", "targets": []}
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data = None
    if isinstance(data, dict):
        row["id"] = str(data.get(kind) or path.stem)
        row["title"] = str(data.get("title") or "")
        if kind == "runbook":
            targets = data.get("targets", "local")
            row["targets"] = [targets] if isinstance(targets, str) else list(targets or [])
    else:
        row["title"] = "(not valid YAML: see `runbook validate`)"
    row["file"] = str(path)
    return row


def list_files(*, as_json: bool = False) -> int:
    found = rows()
    if as_json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print("no runbooks or checklists found (./runbooks, ./checklists, or $RUNBOOK_PATH)")
        return 0
    table = [("ID", "KIND", "TITLE", "TARGETS")]
    table += [(r["id"], r["kind"], r["title"], ", ".join(r["targets"])) for r in found]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        print("  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[3]]))
    return 0
