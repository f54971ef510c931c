"""Imported files as YAML text with a header naming their source, and the drift check.

The header's `# source: {...}` line (JSON) records the Markdown file's name, the section's
heading path and line range, and the SHA-256 of the section's text; `--check` recomputes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from runner.errors import InvalidInput, Location, Problem, UsageError
from runner.importer.build import Library, Output
from runner.safefs import write_file

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
    body = _body(out)
    s = out.section
    meta = {
        "file": source,
        "lines": list(s.lines),
        "section": list(s.path),
        "sha256": s.digest,
        "output_sha256": _sha(body),  # tells a file edited by hand since, which stays
    }
    head = [
        f"# Imported by `runbook import` from {source}, lines {s.lines[0]}-{s.lines[1]}:",
        f"#   {' > '.join(s.path)}",
        f"# `runbook import --check {source}` reports when that section changes.",
        _MARK + json.dumps(meta, ensure_ascii=False),
    ]
    return "\n".join(head) + "\n" + body


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _body(out: Output) -> str:
    data = dict(out.data)
    first = {k: data.pop(k) for k in (out.kind, "title", "description") if k in data}
    text = _dump(first)
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
    """The `# source:` record of an imported file (None for any other file), with `edited`:
    whether the text after it differs from what the import wrote."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            return None
        if line.startswith(_MARK):
            try:
                meta = json.loads(line[len(_MARK) :])
            except ValueError:
                return None
            if not isinstance(meta, dict):
                return None
            body = text.split(line, 1)[1]
            return {**meta, "edited": _sha(body) != meta.get("output_sha256")}
    return None


def write(lib: Library, source: str, outdir: Path, *, dry_run: bool) -> list[Path]:
    """Write every file, or none: a file that exists and was not imported from `source`, or
    was edited since (a step automated by hand), is never overwritten (exit 2, nothing written)."""
    plans = [(outdir / out.path, render(out, source)) for out in lib.outputs]
    problems = []
    for path, _ in plans:
        meta = header(path) if path.exists() else {"file": source}
        why = ""
        if meta is None or meta.get("file") != source:
            why = f"exists and was not imported from {source}: not overwritten"
        elif meta.get("edited"):
            why = "edited since it was imported: not overwritten (move it away to import again)"
        if why:
            problems.append(Problem(Location(str(path)), why))
    if problems:
        raise InvalidInput(problems)
    if not dry_run:
        for path, text in plans:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)  # the umask's mode: a repo's dirs
            except OSError as exc:
                raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
            # not through a symlink planted there after the check above; files for a repo
            write_file(path, text.encode("utf-8"), 0o644)
    return [p for p, _ in plans]


@dataclass(frozen=True)
class Drift:
    state: str  # changed | removed | new
    section: str
    file: str
    lines: tuple[int, int]
    edited: bool = False  # the file was edited by hand since the import: reconcile by hand


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
        name, edited = " > ".join(key[1:]), bool(meta["edited"])
        if out is None:
            lines = tuple(meta.get("lines", (0, 0)))
            drift.append(Drift("removed", name, rel, lines, edited))
        elif out.section.digest != meta.get("sha256"):
            drift.append(Drift("changed", name, rel, out.section.lines, edited))
        else:
            in_step += 1
    for key, out in wanted.items():
        if key not in seen:
            drift.append(Drift("new", " > ".join(key[1:]), out.path, out.section.lines))
    return drift, in_step
