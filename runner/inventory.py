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


DEFAULT = Inventory(hosts=(Host(LOCAL, connection="local"),))


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


def _from_ansible(doc: Document, digest: str) -> Inventory:
    hosts: dict[str, Host] = {}
    groups: dict[str, list[str]] = {}
    group_vars: dict[str, dict[str, Any]] = {}

    def walk(gname: str, node: Any) -> list[str]:
        node = node or {}
        if not isinstance(node, dict):
            raise InvalidInput([doc.problem((gname,), "an Ansible group is a mapping")])
        members: list[str] = []
        for hname, hv in (node.get("hosts") or {}).items():
            hv = dict(hv or {})
            conn = hv.pop("ansible_connection", None)
            address = hv.pop("ansible_host", None)
            port = hv.pop("ansible_port", None)
            user = hv.pop("ansible_user", None)
            key = hv.pop("ansible_ssh_private_key_file", None)
            prev = hosts.get(hname)
            merged = dict(prev.vars) if prev else {}
            merged.update(hv)
            hosts[hname] = Host(
                name=hname,
                connection="local" if conn == "local" else "ssh",
                address=address or (prev.address if prev else hname),
                port=int(port) if port else (prev.port if prev else None),
                user=user or (prev.user if prev else None),
                key=key or (prev.key if prev else None),
                vars=tuple(merged.items()),
            )
            members.append(hname)
        for child, cnode in (node.get("children") or {}).items():
            members += [m for m in walk(child, cnode) if m not in members]
        groups[gname] = members
        if node.get("vars"):
            group_vars[gname] = dict(node["vars"])
        return members

    walk("all", doc.data["all"])
    # the `all` group's vars are the inventory's global vars
    global_vars = group_vars.pop("all", {})
    return Inventory(
        hosts=tuple(hosts.values()),
        groups=tuple((g, tuple(m)) for g, m in groups.items()),
        group_vars=tuple((g, tuple(v.items())) for g, v in group_vars.items()),
        vars=tuple(global_vars.items()),
        file=doc.file,
        sha256=digest,
    )
