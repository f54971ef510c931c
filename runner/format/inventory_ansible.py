"""Ansible's inventory sources, read as Ansible reads them: YAML (with or without `all:`), INI,
the JSON of a dynamic inventory script (or a file of `ansible-inventory --list` output).

We write these small readers rather than import ansible-core's: it is GPL-3 (we are MIT), its
inventory machinery costs ~300 ms to import against our ~45 ms start, and these formats are
small. tests/test_inventory_ansible.py compares what we resolve with `ansible-inventory --list`.

Every reader fills one `Tree`; inventory_vars.py then applies group_vars/, host_vars/ and
Ansible's variable precedence.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import string
from dataclasses import dataclass, field
from typing import Any

from runner.errors import InvalidInput, Location, Problem
from runner.format.source import Document, KeyPath
from runner.format.suggest import did_you_mean


@dataclass
class Group:
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass
class Tree:
    """Groups and hosts of every source read so far, in the order Ansible adds them."""

    groups: dict[str, Group] = field(default_factory=lambda: {"all": Group(), "ungrouped": Group()})
    hostvars: dict[str, dict[str, Any]] = field(default_factory=dict)

    def group(self, name: str) -> Group:
        return self.groups.setdefault(name, Group())

    def add_host(self, group: str, host: str, variables: dict[str, Any]) -> None:
        self.hostvars.setdefault(host, {}).update(variables)
        members = self.group(group).hosts
        if host not in members:
            members.append(host)

    def add_child(self, parent: str, child: str) -> None:
        self.group(child)
        children = self.group(parent).children
        if child not in children and child != parent:
            children.append(child)


# --- host names: `web[01:20].example.com`, `db:2222`, `[2001:db8::1]:22` ---------------------


def expand_range(name: str) -> list[str]:
    """`web[01:03]` -> web01, web02, web03 (also `[a:c]`, `[1:9:2]`), as Ansible expands them."""
    if "[" not in name:
        return [name]
    head, _, rest = name.partition("[")
    spec, sep, tail = rest.partition("]")
    bounds = spec.split(":")
    if not sep or len(bounds) not in (2, 3) or not bounds[1]:
        raise ValueError(f"bad host range '{name}': write [begin:end] or [begin:end:step]")
    beg, end = bounds[0] or "0", bounds[1]
    step = int(bounds[2]) if len(bounds) == 3 else 1
    letters = string.ascii_letters
    if beg in letters and end in letters and len(beg) == len(end) == 1:
        seq = list(letters[letters.index(beg) : letters.index(end) + 1 : step])
    else:
        try:
            numbers = range(int(beg), int(end) + 1, step)
        except ValueError:
            raise ValueError(f"bad host range '{name}'") from None
        width = len(beg) if beg.startswith("0") and len(beg) > 1 else 0
        if width and len(end) != width:
            raise ValueError(f"bad host range '{name}': begin and end need the same width")
        seq = [str(n).zfill(width) for n in numbers]
    out: list[str] = []
    for part in seq:
        out += expand_range(f"{head}{part}{tail}")
    return out


# Ansible's parse_address (parsing/utils/addresses.py): `[host]:22`, then `host:22` where the
# host has no colon outside complete `[...]` ranges, so `web[01:02]:2222` is a range on port 2222
_BRACKETED_PORT = re.compile(r"^\[(.+)\]:([0-9]+)$")
_PORT = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])+):([0-9]+)$")


def parse_host(pattern: str) -> tuple[list[str], int | None]:
    """A host key of a YAML or INI inventory -> its names and the port written after it."""
    port = None
    for regex in (_BRACKETED_PORT, _PORT):  # both in turn, as Ansible does
        m = regex.match(pattern)
        if m:
            pattern, port = m.group(1), int(m.group(2))
    if pattern.endswith(":"):
        raise ValueError(f"'{pattern}': a host ending in ':' needs a port after it")
    return expand_range(pattern), port


def _add_hosts(tree: Tree, group: str, pattern: str, variables: dict[str, Any]) -> None:
    names, port = parse_host(pattern)
    for name in names:
        # as Ansible's Host(name, port): the port of the line that first names the host, and
        # an `ansible_port` written with it wins
        if port and name not in tree.hostvars:
            tree.hostvars[name] = {"ansible_port": port}
        tree.add_host(group, name, dict(variables))


# --- YAML ---------------------------------------------------------------------------------------

_GROUP_KEYS = ("hosts", "children", "vars")


def read_yaml(doc: Document, tree: Tree) -> None:
    """Top-level keys are groups (`all` among them, or not); `children` nest to any depth."""
    problems: list[Problem] = []
    data = doc.data
    if not isinstance(data, dict):
        raise InvalidInput([doc.problem((), "an Ansible inventory is a mapping of groups")])
    if "plugin" in data:
        raise InvalidInput(
            [doc.problem(("plugin",), "inventory plugin configurations are not supported")]
        )
    for name, node in data.items():
        _yaml_group(doc, tree, name, node, (name,), problems)
    if problems:
        raise InvalidInput(problems)


def _yaml_group(
    doc: Document, tree: Tree, name: str, node: Any, path: KeyPath, problems: list[Problem]
) -> None:
    tree.group(name)
    if node is None:
        return
    if not isinstance(node, dict):
        problems.append(doc.problem(path, f"group '{name}' must be a mapping of {_GROUP_KEYS}"))
        return
    for key, value in node.items():
        where = (*path, key)
        if key not in _GROUP_KEYS:
            hint = did_you_mean(key, _GROUP_KEYS)
            problems.append(
                doc.problem(where, f"unknown key '{key}' in group '{name}'{hint}", key=True)
            )
            continue
        if isinstance(value, str):  # Ansible allows `hosts: web1` for one host
            value = {value: None}
        if value is None:
            continue
        if not isinstance(value, dict):
            problems.append(doc.problem(where, f"'{key}' must be a mapping"))
            continue
        if key == "vars":
            tree.group(name).vars.update(value)
        elif key == "children":
            for child, cnode in value.items():
                _yaml_group(doc, tree, child, cnode, (*where, child), problems)
                tree.add_child(name, child)
        else:
            for pattern, hvars in value.items():
                if hvars is not None and not isinstance(hvars, dict):
                    problems.append(doc.problem((*where, pattern), "host vars must be a mapping"))
                    continue
                try:
                    _add_hosts(tree, name, pattern, hvars or {})
                except ValueError as exc:
                    problems.append(doc.problem((*where, pattern), str(exc), key=True))


# --- INI ----------------------------------------------------------------------------------------

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$")


def ini_value(text: str) -> Any:
    """Ansible reads INI values as Python literals when they are one (`22`, `True`, `'x'`)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    if isinstance(value, tuple | set):
        return list(value)
    if isinstance(value, bytes | complex) or value is ...:
        return text
    return value


def read_ini(file: str, text: str, tree: Tree) -> None:
    """`[group]` host lines, `[group:vars]` key=value, `[group:children]`; hosts before any
    section are ungrouped. A child or a `:vars` section must name a group declared somewhere."""
    group, state = "ungrouped", "hosts"
    declared = {"all", "ungrouped", *tree.groups}
    pending: dict[str, int] = {}  # group named by :children or :vars, not declared yet -> line
    problems: list[Problem] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        at = Location(file, n, raw.index(line[0]) + 1)
        m = _SECTION.match(line)
        if m:
            group, state = m.group(1), m.group(2) or "hosts"
            if state not in ("hosts", "children", "vars"):
                problems.append(Problem(at, f"section [{group}:{state}]: unknown type '{state}'"))
                state = "skip"
                continue
            tree.group(group)
            if state == "vars":
                if group not in declared:
                    pending.setdefault(group, n)
            else:
                declared.add(group)
                pending.pop(group, None)
            continue
        if line.startswith("[") and line.endswith("]"):  # not `[2001:db8::1]:22`, a host
            problems.append(Problem(at, f"bad section header '{line}' (no spaces inside [ ])"))
            continue
        try:
            if state == "hosts":
                tokens = shlex.split(line, comments=True)
                variables = {}
                for t in tokens[1:]:
                    key, sep, value = t.partition("=")
                    if not sep:
                        raise ValueError(f"expected key=value after the host name, got '{t}'")
                    variables[key] = ini_value(value)
                _add_hosts(tree, group, tokens[0], variables)
            elif state == "vars":
                key, sep, value = line.partition("=")
                if not sep:
                    raise ValueError(f"expected key=value, got '{line}'")
                tree.group(group).vars[key.strip()] = ini_value(value.strip())
            elif state == "children":
                child = line.split()[0]
                tree.add_child(group, child)
                if child not in declared:
                    pending.setdefault(child, n)
        except ValueError as exc:
            problems.append(Problem(at, str(exc)))
    for name, n in pending.items():
        if name not in declared:
            problems.append(Problem(Location(file, n, 1), f"group '{name}' is never declared"))
    if problems:
        raise InvalidInput(problems)


# --- JSON: a dynamic inventory script's output, or `ansible-inventory --list` -------------------


def read_json(file: str, text: str, tree: Tree, *, script: bool = False) -> list[str] | None:
    """`{"group": {"hosts": [...], "vars": {...}, "children": [...]}, "_meta": {"hostvars":
    {...}}}`; a group may also be a plain list of hosts. Ansible's JSON tags are read
    (`{"__ansible_vault": ...}`, `{"__ansible_unsafe": ...}`); a template in a script's output
    is marked never to be rendered (inventory_templates.py). Returns the hosts listed when there
    is no `_meta` (their vars are then the script's `--host NAME`, as Ansible asks them), else
    None."""
    data = parse_json(file, text, script=script)
    if not isinstance(data, dict):
        raise InvalidInput([Problem(Location(file, 1, 1), "expected a JSON object of groups")])
    hostvars = (data.get("_meta") or {}).get("hostvars") or {}
    problems = []
    listed: list[str] = []
    for name, node in data.items():
        if name == "_meta":
            continue
        if isinstance(node, list):
            node = {"hosts": node}
        if not isinstance(node, dict):
            problems.append(Problem(Location(file), f"group '{name}': expected an object or list"))
            continue
        tree.group(name).vars.update(node.get("vars") or {})
        for child in node.get("children") or []:
            tree.add_child(name, child)
        for host in node.get("hosts") or []:
            tree.add_host(name, host, {})
            listed += [host] if host not in listed else []
    if problems:
        raise InvalidInput(problems)
    for host, hv in hostvars.items():
        if host in tree.hostvars:  # as Ansible: vars of a host that no group lists are unused
            tree.hostvars[host].update(hv or {})
    return listed if "_meta" not in data else None


def parse_json(file: str, text: str, *, script: bool = False) -> Any:
    from runner.format.inventory_templates import from_script

    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidInput([Problem(Location(file, 1, 1), f"not JSON: {exc}")]) from None
    return from_script(data, trusted=not script)
