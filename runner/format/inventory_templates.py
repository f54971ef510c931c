"""Jinja in an Ansible inventory's vars, as Ansible uses it: a string var that holds a template
(`log_dir: "{{ app_dir }}/logs"`) is rendered when it is used, in its host's vars (other vars,
rendered the same way first; a cycle is an error), in the sandbox of render.py. What comes out
is a value: it is never rendered again, whatever it holds, and a command quotes it as any other.

Values that are never rendered: `!unsafe` text (Ansible's "never a template"); a `!vault` value
(encrypted with Ansible Vault, which we do not decrypt: using it is an error, holding it is not);
a template in an inventory script's output is refused when used, not rendered (SECURITY.md:
such output carries cloud tags that whoever may tag an instance writes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

from runner.format.render import RenderError, evaluate, has_template, names_used, render


class Unsafe(str):
    """`!unsafe` text (or `{"__ansible_unsafe": ...}` in JSON): never rendered."""

    __slots__ = ()


class FromScript(str):
    """Text from an inventory script's output that holds `{{`/`{%`: refused when used."""

    __slots__ = ()


class Vaulted:
    """A `!vault` value (or `{"__ansible_vault": ...}`): kept, shown masked, never usable."""

    __slots__ = ("ciphertext",)

    def __init__(self, ciphertext: str) -> None:
        self.ciphertext = ciphertext

    def __repr__(self) -> str:
        return "Vaulted(...)"


def unsafe(value: Any) -> Any:
    """`!unsafe` on a scalar, a list or a mapping: every string in it is never rendered."""
    if isinstance(value, str):
        return Unsafe(value)
    if isinstance(value, list):
        return [unsafe(v) for v in value]
    if isinstance(value, dict):
        return {k: unsafe(v) for k, v in value.items()}
    return value


def from_script(value: Any, *, trusted: bool = False) -> Any:
    """JSON with Ansible's tags read (`{"__ansible_vault": ...}`, `{"__ansible_unsafe": ...}`);
    unless `trusted` (a file, not a script's output), its templates marked FromScript."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"} and isinstance(value["__ansible_unsafe"], str):
            return Unsafe(value["__ansible_unsafe"])
        if set(value) == {"__ansible_vault"} and isinstance(value["__ansible_vault"], str):
            return Vaulted(value["__ansible_vault"])
        return {k: from_script(v, trusted=trusted) for k, v in value.items()}
    if isinstance(value, list):
        return [from_script(v, trusted=trusted) for v in value]
    if not trusted and isinstance(value, str) and has_template(value):
        return FromScript(value)
    return value


ANSIBLE_TAGS = {"!unsafe": unsafe, "!vault": Vaulted, "!vault-encrypted": Vaulted}


def is_plain(value: Any) -> bool:
    """A value usable as it is: nothing in it to render or to refuse."""
    if isinstance(value, Vaulted | FromScript):
        return False
    if isinstance(value, str):
        return isinstance(value, Unsafe) or not has_template(value)
    if isinstance(value, list | tuple):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(is_plain(v) for v in value.values())
    return True


class InventoryVarError(Exception):
    """An inventory var could not be rendered: the message names the host and the var."""

    def __init__(self, message: str, var: str) -> None:
        super().__init__(message)
        self.var = var


# one expression and nothing else; `{{- x -}}` (whitespace control) is one too
_SINGLE = re.compile(r"^\s*{{-?(?P<expr>(?:(?!{{|}}).)*?)-?}}\s*$", re.S)


class HostVars:
    """One host's inventory vars (merged with Ansible's precedence, as written) and the magic
    vars Ansible gives inventory templates; each var rendered once, on first use."""

    def __init__(
        self, host: str, raw: Mapping[str, Any], groups: Sequence[tuple[str, tuple[str, ...]]]
    ) -> None:
        self.host = host
        self.raw = dict(raw)
        self._groups = groups  # the inventory's, shared: read only when a template needs them
        self._done: dict[str, Any] = {}

    @cached_property
    def magic(self) -> dict[str, Any]:
        """Built on first use: for every host of a fleet it is a walk of every group, and most
        vars are no template."""
        return magic_vars(self.host, self._groups)

    def usable(self, wanted: Iterable[str]) -> dict[str, Any]:
        """The vars a template may see: every plain one, and each of `wanted` rendered (a
        template no one asked for, or a vault value, is left out: it is not a value yet)."""
        out = {k: v for k, v in self.raw.items() if is_plain(v)}
        for name in wanted:
            if name in self.raw:
                out[name] = self.get(name)
        return out

    def get(self, name: str, chain: tuple[str, ...] = ()) -> Any:
        if name in self._done:
            return self._done[name]
        if name in chain:
            cycle = " -> ".join([*chain[chain.index(name) :], name])
            raise self._error(chain, f"template cycle: {cycle}")
        value = self._value(self.raw[name], (*chain, name))
        self._done[name] = value
        return value

    def _value(self, value: Any, chain: tuple[str, ...]) -> Any:
        if isinstance(value, Vaulted):
            raise self._error(
                chain,
                f"'{chain[-1]}' is encrypted with Ansible Vault (!vault), and Ansible Vault "
                "decryption is not supported: give the value as a secret param instead",
            )
        if isinstance(value, FromScript):
            raise self._error(
                chain,
                f"'{chain[-1]}' comes from an inventory script and holds a template, which is "
                "never rendered from a script (SECURITY.md); the script may write it as "
                '{"__ansible_unsafe": ...} to mean the text as it is',
            )
        if isinstance(value, list):
            return [self._value(v, chain) for v in value]
        if isinstance(value, dict):
            return {k: self._value(v, chain) for k, v in value.items()}
        if not isinstance(value, str) or isinstance(value, Unsafe) or not has_template(value):
            return value
        try:
            used = names_used(value)
            ctx: dict[str, Any] = {}
            for n in used:
                if n in self.magic:
                    ctx[n] = self.magic[n]
                elif n in self.raw:
                    ctx[n] = self.get(n, chain)
            single = _SINGLE.match(value)
            if single:  # one expression keeps its type (`"{{ base_port + 1 }}"` is a number)
                return evaluate(single.group("expr"), ctx)  # an undefined result: RenderError
            return render(value, ctx)
        except RenderError as exc:
            raise self._error(chain, str(exc)) from None

    def _error(self, chain: tuple[str, ...], message: str) -> InventoryVarError:
        via = f" (through {' -> '.join(chain[1:])})" if len(chain) > 1 else ""
        return InventoryVarError(
            f"host '{self.host}': inventory var '{chain[0]}'{via}: {message}", chain[0]
        )


def magic_vars(host: str, groups: Iterable[tuple[str, tuple[str, ...]]]) -> dict[str, Any]:
    """What Ansible gives every template besides the vars (Host.get_magic_vars, `groups`)."""
    members = dict(groups)
    ip = re.fullmatch(r"[\d.]+|[0-9a-fA-F:]*:[0-9a-fA-F:.]*", host)
    return {
        "inventory_hostname": host,
        "inventory_hostname_short": host if ip else host.split(".", maxsplit=1)[0],
        "group_names": sorted(g for g, hosts in members.items() if host in hosts and g != "all"),
        "groups": {g: list(hosts) for g, hosts in members.items()},
    }
