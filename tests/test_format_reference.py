"""docs/format.md is the complete reference: every key of every schema under schemas/ (a new
schema file included) has a
row in the table of its object there, and every row names a key the schema has. Adding a key
to a schema without documenting it (or documenting one that does not exist) fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from runner.format.render import BUILTIN_NAMES

ROOT = Path(__file__).parent.parent
DOC = ROOT / "docs" / "format.md"


def schema_sections(kind: str) -> dict[str, list[str]]:
    """`{"runbook": [top keys], "step": [...], "rollout": [...], ...}`: each object of the
    schema by its $defs name (or its key, for inline objects), with its keys."""
    schema = json.loads((ROOT / "schemas" / f"{kind}.schema.json").read_text())
    out: dict[str, list[str]] = {}

    def visit(name: str, node: Any) -> None:
        if not isinstance(node, dict):
            return
        if "$ref" in node:
            return  # its $defs entry is visited under its own name
        props = node.get("properties")
        if props:
            out.setdefault(name, [])
            for key, sub in props.items():
                if key not in out[name]:
                    out[name].append(key)
                visit(key, sub)
        for key in ("items", "additionalProperties"):
            visit(name if not props else f"{name}.*", node.get(key))
        for key in ("oneOf", "anyOf", "allOf"):
            for sub in node.get(key, []):
                visit(name, sub)

    visit(kind, schema)
    for name, node in schema.get("$defs", {}).items():
        visit(name, node)
    return out


def doc_sections() -> dict[str, list[str]]:
    """`### kind: object` headings of docs/format.md, each with the keys of its table."""
    out: dict[str, list[str]] = {}
    current = None
    for line in DOC.read_text().splitlines():
        m = re.match(r"^### (\w+): `?([\w.*-]+)`?", line)
        if m:
            current = f"{m.group(1)}: {m.group(2)}"
            out[current] = []
        elif line.startswith("## "):
            current = None
        elif current and (row := re.match(r"^\| `([\w-]+)`", line)):
            out[current].append(row.group(1))
    return out


KINDS = sorted(p.name.split(".")[0] for p in (ROOT / "schemas").glob("*.schema.json"))


@pytest.mark.parametrize("kind", KINDS)
def test_every_schema_key_is_documented_and_every_documented_key_exists(kind: str) -> None:
    documented = {k: v for k, v in doc_sections().items() if k.startswith(f"{kind}: ")}
    expected = {f"{kind}: {name}": keys for name, keys in schema_sections(kind).items()}
    assert {k: sorted(v) for k, v in documented.items()} == {
        k: sorted(v) for k, v in expected.items()
    }


def test_every_template_name_and_filter_is_documented() -> None:
    text = DOC.read_text()
    for name in [*sorted(BUILTIN_NAMES), "raw", "quote"]:
        assert f"`{name}`" in text, name


def test_the_reference_points_at_nothing_outside_the_repository() -> None:
    assert "../shared" not in DOC.read_text()
