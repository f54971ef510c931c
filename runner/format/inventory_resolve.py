"""The tree of every source -> hosts with their resolved vars, as `ansible-inventory --list`
resolves them (see inventory_sources.py for the precedence)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import InvalidInput, Location, Problem
from runner.format.inventory_ansible import Tree
from runner.format.inventory_sources import Sources, load_vars, vars_files

if TYPE_CHECKING:
    from runner.format.inventory_templates import HostVars

# Ansible's connection variables, and the older names Ansible still reads, -> Host fields
CONNECTION_VARS = {
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


def reconcile(tree: Tree, where: str) -> dict[str, int]:
    """Parentless groups become children of `all`, hosts in no group go to `ungrouped` (as
    Ansible's reconcile_inventory does); returns each group's depth below `all`."""
    parents = {c for g in tree.groups.values() for c in g.children}
    for name in tree.groups:
        if name != "all" and name not in parents:
            tree.add_child("all", name)
    grouped = {h for n, g in tree.groups.items() if n not in ("all", "ungrouped") for h in g.hosts}
    ungrouped = tree.groups["ungrouped"]
    ungrouped.hosts = [h for h in ungrouped.hosts if h not in grouped]
    ungrouped.hosts += [h for h in tree.hostvars if h not in grouped and h not in ungrouped.hosts]
    depth: dict[str, int] = {"all": 0}

    def descend(name: str, path: tuple[str, ...]) -> None:
        for child in tree.groups[name].children:
            if child in path:
                cycle = " -> ".join([*path[path.index(child) :], child])
                raise InvalidInput([Problem(Location(where), f"group cycle: {cycle}")])
            if depth.get(child, -1) < len(path):
                depth[child] = len(path)
                descend(child, (*path, child))

    descend("all", ("all",))
    for name in tree.groups:  # a cycle among groups that `all` never reaches
        if name not in depth:
            descend(name, (name,))
    return depth


def memberships(tree: Tree) -> dict[str, set[str]]:
    """host -> every group holding it, directly or through children (`all` included)."""
    out: dict[str, set[str]] = {h: {"all"} for h in tree.hostvars}
    for name in tree.groups:
        for h in hosts_below(tree, name):
            out[h].add(name)
    return out


def hosts_below(tree: Tree, name: str) -> list[str]:
    """The group's own hosts, then its descendants' breadth first (Ansible's Group.get_hosts)."""
    seen: list[str] = []
    stack, visited = [name], set()
    while stack:
        g = stack.pop(0)
        if g in visited:
            continue
        visited.add(g)
        seen += [h for h in tree.groups[g].hosts if h not in seen]
        stack += tree.groups[g].children
    return seen


_PRIORITY = "ansible_group_priority"


def _priority(tree: Tree, name: str) -> int:
    try:
        return int(tree.groups[name].vars.get(_PRIORITY, 1))
    except (TypeError, ValueError):
        return 1


def _group_vars(tree: Tree, name: str) -> dict[str, Any]:
    """A group's vars from the inventory source. Ansible's Group.set_variable keeps
    ansible_group_priority as the group's rank, not a variable: no host or template sees it
    (one in group_vars/ is a plain variable there, and ranks nothing)."""
    return {k: v for k, v in tree.groups[name].vars.items() if k != _PRIORITY}


def resolve_vars(
    src: Sources,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any], dict[str, int]]:
    """host -> its vars, with Ansible's precedence; the `all` group's (with group_vars/all);
    and each group's depth."""
    tree = src.tree
    where = ", ".join(str(b) for b in src.basedirs) or "inventory"
    depth = reconcile(tree, where)
    member = memberships(tree)
    cache: dict[Path, dict[str, Any]] = {}

    def from_dirs(kind: str, names: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for base in src.basedirs:
            for n in names:
                out.update(load_vars(vars_files(base, kind, n), cache))
        return out

    resolved: dict[str, dict[str, Any]] = {}
    for host, own in tree.hostvars.items():
        groups = sorted(
            member[host] - {"all"}, key=lambda g: (depth.get(g, 1), _priority(tree, g), g)
        )
        out = _group_vars(tree, "all")
        for g in groups:
            out.update(_group_vars(tree, g))
        out.update(from_dirs("group_vars", ["all"]))
        out.update(from_dirs("group_vars", groups))
        out.update(own)
        out.update(from_dirs("host_vars", [host]))
        resolved[host] = out
    every = {**_group_vars(tree, "all"), **from_dirs("group_vars", ["all"])}
    return resolved, every, depth


# Ansible's connection plugins that we speak: ssh (`smart` picks ssh; paramiko is another SSH
# client) and local. Any other (docker, winrm, kubectl, chroot, …) would be run over SSH to
# ansible_host, another machine than the inventory means: refused.
CONNECTIONS = {"ssh": "ssh", "smart": "ssh", "paramiko": "ssh", "paramiko_ssh": "ssh"}
CONNECTIONS["local"] = "local"


class NoConnection(Exception):
    """The host's ansible_connection is one we do not support."""


def connection(host: str, hv: HostVars, where: str) -> dict[str, Any]:
    """The Host fields given by Ansible's connection variables (later names win, as listed),
    each rendered if it is a template."""
    conn = {field: hv.get(k) for k, field in CONNECTION_VARS.items() if k in hv.raw}
    kind = conn.get("connection")
    name = str(kind).removeprefix("ansible.builtin.") if kind is not None else "ssh"
    if name not in CONNECTIONS:
        raise NoConnection(
            f"host '{host}': ansible_connection '{kind}' is not supported (runbook connects "
            f"with {', '.join(CONNECTIONS)}); nothing can run there"
        )
    port = conn.get("port")
    try:
        conn["port"] = int(port) if port is not None else None
    except (TypeError, ValueError):
        raise InvalidInput(
            [Problem(Location(where), f"host '{host}': ansible_port {port!r} is not a number")]
        ) from None
    conn["connection"] = CONNECTIONS[name]
    conn["address"] = str(conn.get("address") or host)
    for k in ("user", "key"):
        conn[k] = str(conn[k]) if conn.get(k) else None
    return conn
