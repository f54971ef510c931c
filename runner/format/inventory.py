"""Inventories (SPEC §3): hosts, groups, variables and SSH settings.

Our own YAML format and Ansible's inventories as they are (YAML with or without `all:`, INI,
scripts, `ansible-inventory --list` JSON, group_vars/ and host_vars/; inventory_sources.py) are
read into one Inventory. A host's `vars` are resolved once, when it is loaded, with Ansible's
precedence; `--limit` patterns are matched by hostpatterns.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runner.errors import InvalidInput, Location, Problem
from runner.format import schema
from runner.format.model import parse_duration
from runner.format.source import Document
from runner.format.suggest import did_you_mean

if TYPE_CHECKING:
    from runner.format.inventory_sources import Sources
    from runner.format.inventory_templates import HostVars

LOCAL = "local"


@dataclass(frozen=True)
class SSHSettings:
    config: str | None = None
    known_hosts: str | None = None
    key: str | None = None
    user: str | None = None
    port: int | None = None
    connect_timeout: float = 10.0


@dataclass(frozen=True)
class Host:
    name: str
    connection: str = "ssh"  # "local" or "ssh"
    address: str | None = None
    port: int | None = None
    user: str | None = None
    key: str | None = None
    vars: tuple[tuple[str, Any], ...] = ()  # as written: a template is rendered when used
    # why no command may run on this host (an unsupported ansible_connection, a connection var
    # whose template fails): an error when a run targets it, not when the inventory is read
    problem: str | None = None


@dataclass(frozen=True)
class Inventory:
    hosts: tuple[Host, ...]
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    group_vars: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    vars: tuple[tuple[str, Any], ...] = ()
    ssh: SSHSettings = field(default_factory=SSHSettings)
    file: str | None = None
    sha256: str | None = None
    # (group, its own hosts, its child groups), shallow groups first: for `inventory --graph`
    children: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()
    sources: tuple[str, ...] = ()
    limit: str | None = None  # an Ansible host pattern (`--limit`) that narrows every target
    # No inventory was given: `local` is the only host, whatever group a runbook targets (the
    # seed's runbooks target the application group, which only a real inventory defines).
    implicit: bool = False

    def host(self, name: str) -> Host | None:
        return next((h for h in self.hosts if h.name == name), None)

    def group(self, name: str) -> tuple[str, ...] | None:
        return dict(self.groups).get(name)

    def host_vars(self, host: Host) -> HostVars:
        """Inventory vars < vars of each group holding the host < host vars (a loaded inventory
        has merged every host's vars already, with Ansible's precedence, so they are all in
        `host.vars`); each template in them rendered when used (inventory_templates.py)."""
        from runner.format.inventory_templates import HostVars

        out = dict(self.vars)
        gvars = dict(self.group_vars)
        for gname, members in self.groups:
            if host.name in members:
                out.update(dict(gvars.get(gname, ())))
        out.update(dict(host.vars))
        return HostVars(host.name, out, self.groups)

    def all_var_names(self) -> set[str]:
        names = {k for k, _ in self.vars}
        for _, gv in self.group_vars:
            names |= {k for k, _ in gv}
        for h in self.hosts:
            names |= {k for k, _ in h.vars}
        return names

    def resolve(self, targets: tuple[str, ...]) -> list[Host]:
        """Targets (host names and group names) -> hosts, in order, each once; narrowed by the
        limit. Matching no host at all is an error: a run must never succeed on nobody."""
        out: list[Host] = list(self.hosts) if self.implicit else []
        for name in () if self.implicit else targets:
            members = self.group(name)
            if members is None:
                members = (name,) if self.host(name) or name == LOCAL else None
            if members is None:
                names = [h.name for h in self.hosts] + [g for g, _ in self.groups]
                raise self._problem(
                    f"no host or group named '{name}'{did_you_mean(name, names)} "
                    f"(known: {', '.join(names) or 'none'})"
                )
            for m in members:
                h = self.host(m) or (Host(LOCAL, connection="local") if m == LOCAL else None)
                if h is None:
                    raise self._problem(f"group member '{m}' is not a host")
                if h not in out:
                    out.append(h)
        if self.limit is not None:
            from runner.format.hostpatterns import select

            allowed = set(select(self, self.limit))
            out = [h for h in out if h.name in allowed]
        if not out:
            limit = f" within --limit '{self.limit}'" if self.limit is not None else ""
            raise self._problem(f"the targets {', '.join(targets)} match no host{limit}")
        unusable = [
            Problem(Location(self.file or "inventory"), h.problem) for h in out if h.problem
        ]
        if unusable:
            raise InvalidInput(unusable)
        return out

    def _problem(self, message: str) -> InvalidInput:
        return InvalidInput([Problem(Location(self.file or "inventory"), message)])


DEFAULT = Inventory(hosts=(Host(LOCAL, connection="local"),), implicit=True)


def load(paths: str | Sequence[str]) -> Inventory:
    """One or more `-i` sources, merged in order (a later source's vars win)."""
    from runner.format.inventory_sources import read

    sources = (paths,) if isinstance(paths, str) else tuple(paths)
    src = read(sources)
    return build(src, sources)


def build(src: Sources, sources: tuple[str, ...]) -> Inventory:
    from runner.format.inventory_resolve import NoConnection, connection, hosts_below, resolve_vars
    from runner.format.inventory_templates import HostVars, InventoryVarError

    where = ", ".join(sources)
    resolved, every, depth = resolve_vars(src)
    tree = src.tree
    groups = sorted(tree.groups, key=lambda g: (depth.get(g, 1), g))
    members = tuple((g, tuple(hosts_below(tree, g))) for g in groups)
    hosts = []
    for name, merged in resolved.items():
        try:
            conn = connection(name, HostVars(name, merged, members), where)
        except (InventoryVarError, NoConnection) as exc:
            hosts.append(Host(name=name, vars=tuple(merged.items()), problem=str(exc)))
            continue
        hosts.append(Host(name=name, vars=tuple(merged.items()), **conn))
    return Inventory(
        hosts=tuple(hosts),
        # in the order they were declared, as Ansible enumerates them for a host pattern
        groups=tuple((g, tuple(hosts_below(tree, g))) for g in tree.groups),
        children=tuple(
            (g, tuple(tree.groups[g].hosts), tuple(tree.groups[g].children)) for g in groups
        ),
        vars=tuple(every.items()),  # what a check on this machine sees (checklists)
        ssh=src.ssh or SSHSettings(),
        file=where,
        sources=sources,
        sha256=src.digest(),
    )


def native_to_tree(doc: Document, src: Sources) -> None:
    """Our own format (SPEC §3: `ssh`, `hosts`, `groups`, `vars`), checked by its schema, added
    to the tree with its connection settings as Ansible's variables."""
    problems = schema.validate(doc, "inventory")
    if problems:
        raise InvalidInput(problems)
    data: dict[str, Any] = doc.data
    if "ssh" in data:
        s = data["ssh"]
        src.ssh = SSHSettings(
            config=s.get("config"),
            known_hosts=s.get("known_hosts"),
            key=s.get("key"),
            user=s.get("user"),
            port=s.get("port"),
            connect_timeout=parse_duration(s.get("connect_timeout", 10)),
        )
    tree = src.tree
    for name, h in (data.get("hosts") or {}).items():
        h = h or {}
        local = h.get("connection") == "local" or (name == LOCAL and "address" not in h)
        conn = {"ansible_connection": "local" if local else "ssh"}
        for field_, var in _NATIVE_CONN.items():
            if h.get(field_) is not None:
                conn[var] = h[field_]
        tree.add_host("ungrouped", name, {**conn, **(h.get("vars") or {})})
    names = set(tree.hostvars) | {LOCAL}
    problems = []
    for gname, g in (data.get("groups") or {}).items():
        members = g if isinstance(g, list) else g.get("hosts", [])
        for i, m in enumerate(members):
            if m not in names:
                problems.append(
                    doc.problem(("groups", gname, i), f"'{m}' is not a host of this inventory")
                )
            elif m == LOCAL and m not in tree.hostvars:
                tree.add_host(gname, m, {"ansible_connection": "local"})
            else:
                tree.add_host(gname, m, {})
        tree.group(gname)
        if isinstance(g, dict):
            tree.group(gname).vars.update(g.get("vars") or {})
    if problems:
        raise InvalidInput(problems)
    tree.group("all").vars.update(data.get("vars") or {})


_NATIVE_CONN = {
    "address": "ansible_host",
    "port": "ansible_port",
    "user": "ansible_user",
    "key": "ansible_ssh_private_key_file",
}
