"""Imported files as YAML text with a header naming their source, and the drift check.

The header's `# source: {...}` line (JSON) records the Markdown file's name, the section's
heading path and line range, and the SHA-256 of the section's text; `--check` recomputes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from runner.errors import InvalidInput, Location, Problem
from runner.importer.build import Library, Output

_MARK = "# source: "


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(data: dict[str, Any]) -> str:
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )


def render(out: Output, source: str) -> str:
    s = out.section
    meta = {"file": source, "lines": list(s.lines), "section": list(s.path), "sha256": s.digest}
    head = [
        f"# Imported by `runbook import` from {source}, lines {s.lines[0]}-{s.lines[1]}:",
        f"#   {' > '.join(s.path)}",
        f"# `runbook import --check {source}` reports when that section changes.",
        _MARK + json.dumps(meta, ensure_ascii=False),
    ]
    data = dict(out.data)
    key = out.kind
    first = {k: data.pop(k) for k in (key, "title", "description") if k in data}
    text = "\n".join(head) + "\n" + _dump(first)
    hosts = [x for x in out.lifts if x.host]
    plain = [x for x in out.lifts if not x.host]
    if out.lifts:
        text += "# Values of the source lifted into variables, so the runbook is not tied to one machine.\n"
    if hosts:
        text += "host_vars:  # each target host gets these from the inventory\n"
        for x in hosts:
            desc = f"was {x.value} in the source ({x.count} times)"
            text += "  " + _dump({x.name: desc})
    if plain:
        text += "vars:  # to vary one per host, move it to host_vars and the inventory\n"
        for x in plain:
            text += f"  # repeated {x.count} times in the source\n  " + _dump({x.name: x.value})
    return text + _dump(data)


def header(path: Path) -> dict[str, Any] | None:
    """The `# source:` record of an imported file (None for any other file)."""
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.startswith("#"):
                    return None
                if line.startswith(_MARK):
                    meta = json.loads(line[len(_MARK) :])
                    return meta if isinstance(meta, dict) else None
    except (OSError, ValueError):
        return None
    return None


def write(lib: Library, source: str, outdir: Path, *, dry_run: bool) -> list[Path]:
    """Write every file, or none: a file that exists and was not imported from `source` is
    never overwritten (exit 2, nothing written)."""
    plans = [(outdir / out.path, render(out, source)) for out in lib.outputs]
    problems = []
    for path, _ in plans:
        meta = header(path) if path.exists() else {"file": source}
        if meta is None or meta.get("file") != source:
            why = "exists and was not imported from " + source + ": not overwritten"
            problems.append(Problem(Location(str(path)), why))
    if problems:
        raise InvalidInput(problems)
    if not dry_run:
        for path, text in plans:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return [p for p, _ in plans]


@dataclass(frozen=True)
class Drift:
    state: str  # changed | removed | new
    section: str
    file: str
    lines: tuple[int, int]


def check(lib: Library, source: str, outdir: Path) -> tuple[list[Drift], int]:
    """Sections changed, gone or added in the Markdown since the files in `outdir` were imported
    from it, and how many files are in step."""
    wanted = {(o.kind, *o.section.path): o for o in lib.outputs}
    seen: set[tuple[str, ...]] = set()
    drift: list[Drift] = []
    in_step = 0
    for path in sorted([*outdir.glob("runbooks/*.y*ml"), *outdir.glob("checklists/*.y*ml")]):
        meta = header(path)
        if not meta or meta.get("file") != source:
            continue
        key = (path.parent.name[:-1], *meta.get("section", ()))
        seen.add(key)
        out = wanted.get(key)
        rel = str(path.relative_to(outdir))
        if out is None:
            drift.append(
                Drift("removed", " > ".join(key[1:]), rel, tuple(meta.get("lines", (0, 0))))
            )
        elif out.section.digest != meta.get("sha256"):
            drift.append(Drift("changed", " > ".join(key[1:]), rel, out.section.lines))
        else:
            in_step += 1
    for key, out in wanted.items():
        if key not in seen:
            drift.append(Drift("new", " > ".join(key[1:]), out.path, out.section.lines))
    return drift, in_step
