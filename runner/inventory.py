"""Inventories (SPEC §3): hosts, groups, variables and SSH settings.

Ansible's YAML inventory format (`all:`/`children:`/`hosts:`, `ansible_host`, `ansible_port`,
`ansible_user`, `ansible_connection`) is read too, so a team can point us at what it has.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import schema
from runner.errors import InvalidInput, Location, Problem
from runner.model import parse_duration
from runner.source import Document, load_file

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
    vars: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Inventory:
    hosts: tuple[Host, ...]
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    group_vars: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    vars: tuple[tuple[str, Any], ...] = ()
    ssh: SSHSettings = field(default_factory=SSHSettings)
    file: str | None = None
    sha256: str | None = None
    # No inventory was given: `local` is the only host, whatever group a runbook targets (the
    # seed's runbooks target the application group, which only a real inventory defines).
    implicit: bool = False

    def host(self, name: str) -> Host | None:
        return next((h for h in self.hosts if h.name == name), None)

    def group(self, name: str) -> tuple[str, ...] | None:
        return dict(self.groups).get(name)

    def host_vars(self, host: Host) -> dict[str, Any]:
        """Inventory vars < vars of each group holding the host (in file order) < host vars."""
        out = dict(self.vars)
        gvars = dict(self.group_vars)
        for gname, members in self.groups:
            if host.name in members:
                out.update(dict(gvars.get(gname, ())))
        out.update(dict(host.vars))
        return out

    def all_var_names(self) -> set[str]:
        names = {k for k, _ in self.vars}
        for _, gv in self.group_vars:
            names |= {k for k, _ in gv}
        for h in self.hosts:
            names |= {k for k, _ in h.vars}
        return names

    def resolve(self, targets: tuple[str, ...]) -> list[Host]:
        """Targets (host names and group names) -> hosts, in order, each once."""
        if self.implicit:
            return list(self.hosts)
        out: list[Host] = []
        for name in targets:
            members = self.group(name)
            if members is None:
                members = (name,) if self.host(name) or name == LOCAL else None
            if members is None:
                known = ", ".join([h.name for h in self.hosts] + [g for g, _ in self.groups])
                raise InvalidInput(
                    [
                        Problem(
                            Location(self.file or "inventory"),
                            f"no host or group named '{name}' (known: {known or 'none'})",
                        )
                    ]
                )
            for m in members:
                h = self.host(m) or (Host(LOCAL, connection="local") if m == LOCAL else None)
                if h is None:
                    raise InvalidInput(
                        [
                            Problem(
                                Location(self.file or "inventory"),
                                f"group member '{m}' is not a host",
                            )
                        ]
                    )
                if h not in out:
                    out.append(h)
        return out


DEFAULT = Inventory(hosts=(Host(LOCAL, connection="local"),), implicit=True)


def load(path: str | Path) -> Inventory:
    doc = load_file(path)
    digest = hashlib.sha256(doc.text.encode("utf-8")).hexdigest()
    data = doc.data
    if isinstance(data, dict) and "all" in data and "hosts" not in data:
        return _from_ansible(doc, digest)
    problems = schema.validate(doc, "inventory")
    if problems:
        raise InvalidInput(problems)
    return _from_native(doc, digest)


def _from_native(doc: Document, digest: str) -> Inventory:
    data: dict[str, Any] = doc.data
    s = data.get("ssh", {})
    ssh = SSHSettings(
        config=s.get("config"),
        known_hosts=s.get("known_hosts"),
        key=s.get("key"),
        user=s.get("user"),
        port=s.get("port"),
        connect_timeout=parse_duration(s.get("connect_timeout", 10)),
    )
    hosts = []
    for name, h in (data.get("hosts") or {}).items():
        h = h or {}
        local = h.get("connection") == "local" or (name == LOCAL and "address" not in h)
        hosts.append(
            Host(
                name=name,
                connection="local" if local else "ssh",
                address=h.get("address", name),
                port=h.get("port"),
                user=h.get("user"),
                key=h.get("key"),
                vars=tuple((h.get("vars") or {}).items()),
            )
        )
    groups, group_vars = [], []
    problems = []
    names = {h.name for h in hosts}
    for gname, g in (data.get("groups") or {}).items():
        members = g if isinstance(g, list) else g.get("hosts", [])
        for i, m in enumerate(members):
            if m not in names and m != LOCAL:
                problems.append(
                    doc.problem(("groups", gname, i), f"'{m}' is not a host of this inventory")
                )
        groups.append((gname, tuple(members)))
        if isinstance(g, dict):
            group_vars.append((gname, tuple((g.get("vars") or {}).items())))
    if problems:
        raise InvalidInput(problems)
    return Inventory(
        hosts=tuple(hosts),
        groups=tuple(groups),
        group_vars=tuple(group_vars),
        vars=tuple((data.get("vars") or {}).items()),
        ssh=ssh,
        file=doc.file,
        sha256=digest,
    )


# Ansible's connection variables, and the older names Ansible still reads
_ANSIBLE_CONN = {
    "ansible_connection": "connection",
    "ansible_host": "address",
    "ansible_ssh_host": "address",
    "ansible_port": "port",
    "ansible_ssh_port": "port",
    "ansible_user": "user",
    "ansible_ssh_user": "user",
    "ansible_ssh_private_key_file": "key",
    "ansible_private_key_file": "key",
}


def _from_ansible(doc: Document, digest: str) -> Inventory:
    """Ansible YAML: connection variables may be set on hosts or on groups (`all` lowest, a child
    group over its parents, the host over its groups), like Ansible's own precedence."""
    host_vars: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[str]] = {}
    group_vars: dict[str, dict[str, Any]] = {}

    def walk(gname: str, node: Any, path: tuple[str, ...]) -> list[str]:
        node = node or {}
        if not isinstance(node, dict):
            raise InvalidInput([doc.problem(path, "an Ansible group is a mapping")])
        groups.setdefault(gname, [])  # parents before children: later groups take precedence
        if node.get("vars"):
            group_vars.setdefault(gname, {}).update(dict(node["vars"]))
        members: list[str] = []
        for hname, hv in (node.get("hosts") or {}).items():
            host_vars.setdefault(hname, {}).update(dict(hv or {}))
            members.append(hname)
        for child, cnode in (node.get("children") or {}).items():
            members += [
                m for m in walk(child, cnode, (*path, "children", child)) if m not in members
            ]
        groups[gname] += [m for m in members if m not in groups[gname]]
        return members

    walk("all", doc.data["all"], ("all",))
    hosts: list[Host] = []
    for hname, own in host_vars.items():
        merged: dict[str, Any] = {}
        for gname, members in groups.items():
            if hname in members or gname == "all":
                merged.update(group_vars.get(gname, {}))
        merged.update(own)
        conn = {field: merged[k] for k, field in _ANSIBLE_CONN.items() if k in merged}
        port = conn.get("port")
        try:
            port_number = int(port) if port is not None else None
        except (TypeError, ValueError):
            raise InvalidInput(
                [doc.problem(("all",), f"host '{hname}': ansible_port {port!r} is not a number")]
            ) from None
        hosts.append(
            Host(
                name=hname,
                connection="local" if conn.get("connection") == "local" else "ssh",
                address=str(conn.get("address") or hname),
                port=port_number,
                user=str(conn["user"]) if conn.get("user") else None,
                key=str(conn["key"]) if conn.get("key") else None,
                vars=tuple((k, v) for k, v in own.items() if k not in _ANSIBLE_CONN),
            )
        )
    # the `all` group's vars are the inventory's global vars
    global_vars = group_vars.pop("all", {})
    return Inventory(
        hosts=tuple(hosts),
        groups=tuple((g, tuple(m)) for g, m in groups.items()),
        group_vars=tuple((g, _plain_vars(v)) for g, v in group_vars.items()),
        vars=_plain_vars(global_vars),
        file=doc.file,
        sha256=digest,
    )


def _plain_vars(values: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple((k, v) for k, v in values.items() if k not in _ANSIBLE_CONN)
