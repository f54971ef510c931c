"""Ansible's host patterns, for `--limit` and `inventory --limit`: `web1`, `web*`, `~web\\d+`,
`prod:&eu` (and), `prod:!app3` (not), `a,b` (or), `webservers[0]`, `webservers[0:2]`.

As in Ansible, the plain terms are added first, then `&` terms intersect and `!` terms remove,
whatever their order in the pattern; a pattern of only `&`/`!` terms starts from `all`. Unlike
Ansible, which warns and goes on, a plain name that is neither a host nor a group is an error:
a typo in a limit must not quietly change which production hosts are touched.
"""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING

from runner.errors import UsageError
from runner.format.suggest import did_you_mean

if TYPE_CHECKING:
    from runner.format.inventory import Inventory

# a term: anything but whitespace, ':' and brackets, or a whole bracketed expression
_TERM = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?\d+)|(\d*):(-?\d*))\]$")


def split(pattern: str) -> list[str]:
    """`a,b` / `a:b:&c:!d` -> terms (commas win, as in Ansible; `[0:2]` keeps its colon)."""
    if "," in pattern:
        return [t for part in pattern.split(",") for t in split(part.strip()) if t]
    terms = [m.group(0) for m in _TERM.finditer(pattern)]
    if "".join(terms) != re.sub(r"[\s:]", "", pattern):  # e.g. an unclosed `[`
        raise UsageError(f"cannot read the host pattern {pattern!r}")
    return terms


def select(inventory: Inventory, pattern: str) -> list[str]:
    """The names of the hosts `pattern` picks, in inventory order. Raises UsageError on a
    name that matches nothing, naming the closest ones."""
    terms = split(pattern)
    if not terms:
        raise UsageError(f"empty host pattern {pattern!r}")
    plain = [t for t in terms if t[0] not in "&!"]
    ordered = (plain or ["all"]) + [t for t in terms if t[0] == "&"]
    ordered += [t for t in terms if t[0] == "!"]
    chosen: list[str] = []
    for term in ordered:
        matched = _one(inventory, term.lstrip("&!"))
        if term[0] == "!":
            chosen = [h for h in chosen if h not in matched]
        elif term[0] == "&":
            chosen = [h for h in chosen if h in matched]
        else:
            chosen += [h for h in matched if h not in chosen]
    order = [h.name for h in inventory.hosts]
    return sorted(chosen, key=lambda h: order.index(h) if h in order else len(order))


def _one(inventory: Inventory, term: str) -> list[str]:
    subscript: tuple[int, int | None] | None = None
    m = _SUBSCRIPT.match(term) if not term.startswith("~") else None
    if m:
        term = m.group(1)
        if m.group(2) is not None:
            subscript = (int(m.group(2)), None)
        else:
            subscript = (int(m.group(3) or 0), int(m.group(4)) if m.group(4) else -1)
    hosts = _enumerate(inventory, term)
    if subscript is None:
        return hosts
    start, end = subscript
    if end is None:
        return hosts[start : start + 1] if -len(hosts) <= start < len(hosts) else []
    return hosts[start:] if end == -1 else hosts[start : end + 1]


def _enumerate(inventory: Inventory, term: str) -> list[str]:
    """Groups the term matches give their hosts; host names are matched too when no group
    matched or the term is a glob or a regex (Ansible's _enumerate_matches)."""
    if term in ("all", "*"):  # every host, also in an inventory with no `all` group (none given)
        return [h.name for h in inventory.hosts]
    if term.startswith("~"):
        try:
            regex = re.compile(term[1:])
        except re.error as exc:
            raise UsageError(f"host pattern '{term}': bad regular expression ({exc})") from None
        match = regex.search
    else:
        regex = re.compile(fnmatch.translate(term))
        match = regex.match
    groups = [g for g, _ in inventory.groups if match(g)]
    out: list[str] = []
    for g in groups:
        out += [h for h in inventory.group(g) or () if h not in out]
    special = term.startswith("~") or any(c in term for c in ".?*[")
    if not groups or special:
        out += [h.name for h in inventory.hosts if match(h.name) and h.name not in out]
    if not out and not groups and not term.startswith("~") and not any(c in term for c in "?*["):
        names = [h.name for h in inventory.hosts] + [g for g, _ in inventory.groups]
        raise UsageError(
            f"host pattern: no host or group named '{term}'{did_you_mean(term, names)}"
        )
    return out
