"""`runbook inventory [--graph|--list|--host H] [-i …] [--limit …]`: what an inventory
resolves to, as `ansible-inventory` shows it, with secret values masked."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from runner.errors import UsageError
from runner.format import inventory as inventory_mod
from runner.format.hostpatterns import select
from runner.format.inventory_templates import Unsafe, Vaulted
from runner.format.redact import MASK
from runner.format.suggest import did_you_mean

# names whose values are secrets (ansible_password, ansible_become_pass, db_token, api_key, …)
SECRET_NAME = re.compile(r"pass(word)?|secret|token|private|(^|_)key$|credential", re.I)


def mask(name: str, value: Any, *, tags: bool = True) -> Any:
    """A secret-named var's value, or a vault-encrypted one (`!vault`, or a string of Vault's
    format), is never printed. Templates are shown as written, as `ansible-inventory` does."""
    if SECRET_NAME.search(name) and name != "ansible_ssh_private_key_file":
        return MASK
    if isinstance(value, Vaulted):
        return MASK
    if isinstance(value, Unsafe):  # as ansible-inventory --list writes it (--host: as text)
        return {"__ansible_unsafe": str(value)} if tags else str(value)
    if isinstance(value, str) and value.startswith("$ANSIBLE_VAULT;"):
        return MASK
    if isinstance(value, dict):
        return {k: mask(k, v, tags=tags) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(name, v, tags=tags) for v in value]
    return value


def show_inventory(
    sources: Sequence[str] | None, *, limit: str | None, as_list: bool, host: str | None
) -> int:
    inv = inventory_mod.load(sources) if sources else inventory_mod.DEFAULT
    chosen = select(inv, limit) if limit else [h.name for h in inv.hosts]
    if host is not None:
        h = inv.host(host)
        if h is None:
            names = [x.name for x in inv.hosts]
            raise UsageError(f"no host named '{host}'{did_you_mean(host, names)}")
        shown = {k: mask(k, v, tags=False) for k, v in h.vars}
        print(json.dumps(shown, indent=4, sort_keys=True))
        return 0
    if as_list:
        print(json.dumps(as_ansible_list(inv, chosen), indent=4, sort_keys=True))
        return 0
    print("\n".join(graph(inv, chosen)))
    return 0


def as_ansible_list(inv: inventory_mod.Inventory, chosen: Sequence[str]) -> dict[str, Any]:
    """The shape of `ansible-inventory --list`: groups with hosts and children, `_meta`."""
    out: dict[str, Any] = {"_meta": {"hostvars": {}}}
    for h in inv.hosts:
        if h.name in chosen:
            out["_meta"]["hostvars"][h.name] = {k: mask(k, v) for k, v in h.vars}
    for name, own, children in inv.children:
        node: dict[str, Any] = {}
        hosts = [h for h in own if h in chosen]
        if hosts and name != "all":
            node["hosts"] = hosts
        if children:
            node["children"] = list(children)
        if node:
            out[name] = node
    return out


def graph(inv: inventory_mod.Inventory, chosen: Sequence[str]) -> list[str]:
    """`@all:` / `  |--@web:` / `  |  |--web1`, as `ansible-inventory --graph` draws it."""
    tree = {name: (own, children) for name, own, children in inv.children}
    if not tree:  # no inventory: only the local host
        return ["@all:", *[f"  |--{h}" for h in chosen]]
    lines: list[str] = []

    def draw(name: str, depth: int) -> None:
        lines.append(("  |" * depth + "--" if depth else "") + f"@{name}:")
        own, children = tree[name]
        for child in sorted(children):
            if _has_hosts(tree, child, chosen):
                draw(child, depth + 1)
        lines.extend("  |" * (depth + 1) + "--" + h for h in sorted(own) if h in chosen)

    draw("all", 0)
    return lines


def _has_hosts(tree: dict[str, Any], name: str, chosen: Sequence[str]) -> bool:
    own, children = tree[name]
    return any(h in chosen for h in own) or any(_has_hosts(tree, c, chosen) for c in children)
