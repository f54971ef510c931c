"""YAML loading that keeps node positions, so every error can name `file:line:col`.

We compose the YAML node graph ourselves (PyYAML's composer is linear even for alias-heavy
input) and construct plain Python values while counting the nodes we visit: an alias bomb
("billion laughs") trips the budget long before it can exhaust memory. Duplicate keys, which
PyYAML silently resolves to the last one, are reported as errors.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runner.errors import InvalidInput, Location, Problem

try:  # libyaml is several times faster; PyYAML's wheels ship it
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

KeyPath = tuple[str | int, ...]

MAX_NODES = 100_000  # far above any hand-written file; an alias bomb needs billions
MAX_DEPTH = 64
_MERGE = "tag:yaml.org,2002:merge"
_DEFAULT_TAG: dict[type[yaml.Node], str] = {
    yaml.MappingNode: "tag:yaml.org,2002:map",
    yaml.SequenceNode: "tag:yaml.org,2002:seq",
}
# what YAML 1.1 makes of an unquoted scalar that is not a string: `0755` is 493, `1.10` is 1.1
_NOT_TEXT = {f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "timestamp")}


def format_path(path: KeyPath) -> str:
    """("steps", 3, "run") -> "steps[3].run"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class Document:
    """A loaded YAML file: its data plus where every value and key was written."""

    file: str
    data: Any
    text: str = ""
    values: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    # the text of each unquoted number, boolean or date, as written (`mode: 0755` -> "0755"),
    # for a value that is declared a string (params.py)
    written: dict[KeyPath, str] = field(default_factory=dict)

    def location(self, path: KeyPath, *, key: bool = False) -> Location:
        """The closest known position for `path` (walking up to its parent if needed)."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while True:
            pos = table.get(probe) or self.values.get(probe)
            if pos is not None or not probe:
                break
            probe = probe[:-1]
        line, col = pos if pos else (1, 1)
        return Location(self.file, line, col, format_path(path))

    def problem(self, path: KeyPath, message: str, *, key: bool = False) -> Problem:
        return Problem(self.location(path, key=key), message)


Tags = Mapping[str, Callable[[Any], Any]]  # a local tag (`!vault`) -> what builds its value


class _Builder:
    def __init__(self, doc: Document, tags: Tags) -> None:
        self.doc = doc
        self.tags = tags
        self.visited = 0
        self.problems: list[Problem] = []
        self._scalars = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: KeyPath, depth: int = 0) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise _TooBig(f"more than {MAX_NODES} YAML nodes (alias expansion?)")
        if depth > MAX_DEPTH:
            raise _TooBig(f"nested deeper than {MAX_DEPTH} levels")
        self.doc.values.setdefault(path, _mark(node))
        tagged = self.tags.get(node.tag)
        if tagged is not None:
            if isinstance(node, yaml.ScalarNode):
                return tagged(node.value)  # the text as written, never resolved to a number
            kind = yaml.MappingNode if isinstance(node, yaml.MappingNode) else yaml.SequenceNode
            untagged = kind(_DEFAULT_TAG[kind], node.value, node.start_mark, node.end_mark)
            return tagged(self.build(untagged, path, depth))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        value = self._scalars.construct_object(node, deep=True)
        plain = isinstance(node, yaml.ScalarNode) and not node.style  # None, or "" in libyaml
        if plain and node.tag in _NOT_TEXT:
            self.doc.written.setdefault(path, node.value)
        if isinstance(value, _dt.datetime | _dt.date):
            return value.isoformat()  # keep everything JSON-shaped for the schema and the log
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        return value

    def _mapping(self, node: yaml.MappingNode, path: KeyPath, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        explicit: set[str] = set()
        for key_node, value_node in self._pairs(node):
            if key_node.tag == _MERGE:
                continue
            key = self._scalars.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                # a key as written: YAML 1.1 reads a plain `on:` (the step key) as True, `0x10:`
                # as 16; no key of ours is a boolean or a number
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key)
            child = (*path, key)
            if key in explicit:
                self.problems.append(
                    Problem(
                        Location(self.doc.file, *_mark(key_node), format_path(child)),
                        "duplicate key (YAML would silently keep only the last one)",
                    )
                )
            explicit.add(key)
            self.doc.keys.setdefault(child, _mark(key_node))
            out[key] = self.build(value_node, child, depth + 1)
        # merge keys (<<: *anchor) fill in only what the mapping did not set itself
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                continue
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for src in sources:
                merged = self.build(src, path, depth + 1)
                if isinstance(merged, dict):
                    for k, v in merged.items():
                        out.setdefault(k, v)
        return out

    @staticmethod
    def _pairs(node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        yield from node.value


class _TooBig(Exception):
    pass


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def load_text(text: str, file: str, *, tags: Tags | None = None) -> Document:
    """Parse YAML text. Raises InvalidInput naming the position of any syntax error. `tags`
    gives the local tags the file may use (an Ansible vars file's `!vault`, `!unsafe`)."""
    doc = Document(file=file, data=None, text=text)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or exc.context or "invalid YAML"
        raise InvalidInput(
            [Problem(Location(file, line, col), f"YAML syntax error: {reason}")]
        ) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (a NUL, say)
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - text.rfind("\n", 0, exc.position)
        what = (
            f"cannot decode byte #x{exc.character[0]:02x} as {exc.encoding}"
            if isinstance(exc.character, bytes)
            else f"unacceptable character #x{exc.character:04x}"
        )
        raise InvalidInput(
            [Problem(Location(file, line, col), f"YAML error: {what}: {exc.reason}")]
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidInput([Problem(Location(file), f"YAML error: {exc}")]) from None
    if root is None:
        raise InvalidInput([Problem(Location(file, 1, 1), "the file is empty")])
    builder = _Builder(doc, tags or {})
    try:
        doc.data = builder.build(root, ())
    except _TooBig as exc:
        raise InvalidInput([Problem(Location(file, 1, 1), f"rejected: {exc}")]) from None
    except yaml.YAMLError as exc:
        raise InvalidInput([Problem(Location(file), f"YAML error: {exc}")]) from None
    if builder.problems:
        raise InvalidInput(builder.problems)
    return doc


def load_file(
    path: Path | str, *, display: str | None = None, tags: Tags | None = None
) -> Document:
    p = Path(path)
    name = display or _display_name(p)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InvalidInput([Problem(Location(name), "no such file")]) from None
    except OSError as exc:
        raise InvalidInput([Problem(Location(name), f"cannot read: {exc}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput([_not_utf8(name, data, exc)]) from None
    return load_text(text, name, tags=tags)


def _not_utf8(name: str, data: bytes, exc: UnicodeDecodeError) -> Problem:
    """Where the first byte that is not UTF-8 is, as line:col (a byte offset helps nobody)."""
    before = data[: exc.start]
    line = before.count(b"\n") + 1
    col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", errors="replace")) + 1
    return Problem(
        Location(name, line, col),
        f"not UTF-8 text: byte 0x{data[exc.start]:02x} ({exc.reason}); a binary file, or "
        "another encoding (save it as UTF-8)",
    )


def _display_name(p: Path) -> str:
    """Paths relative to the working directory when they are below it: shorter errors."""
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)
