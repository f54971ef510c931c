"""Ansible's host patterns, for `--limit` and `inventory --limit`: `web1`, `web*`, `~web\\d+`,
`prod:&eu` (and), `prod:!app3` (not), `a,b` (or), `webservers[0]`, `webservers[0:2]`.

As in Ansible, the plain terms are added first, then `&` terms intersect and `!` terms remove,
whatever their order in the pattern; a pattern of only `&`/`!` terms starts from `all`. Unlike
Ansible, which warns and goes on, a plain name that is neither a host nor a group is an error:
a typo in a limit must not quietly change which production hosts are touched.

Subscripts are Ansible's (inventory/manager.py `_split_subscript`, `_apply_subscript`): `[N]`
(negative counts from the end), `[N:M]` with M included, `[N:]`, and the old `[N-M]`; they
index the hosts in the order Ansible enumerates them (`_enumerate`). One index past either end
is an error, as in Ansible; a slice past the end is empty. `[:M]`, which Ansible documents but
ansible-core reads as a glob matching nothing, means `[0:M]`. A range that ends before it
starts, or has a negative bound, is an error here (Ansible silently picks nothing, or for
`[2:0]` the host at 2): in a `!` term either would exclude nothing without a word.
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
# Ansible's PATTERN_WITH_SUBSCRIPT, with the start of a range optional (its docs' `[:M]`)
_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]*)([:-])([0-9]*))\]$")
_NEGATIVE_RANGE = re.compile(r"^(.+)\[-?[0-9]*:-?[0-9]*\]$")  # e.g. `[-2:]`, `[1:-1]`


def split(pattern: str) -> list[str]:
    """`a,b` / `a:b:&c:!d` -> terms (commas win, as in Ansible; `[0:2]` keeps its colon)."""
    if "," in pattern:
        return [t for part in pattern.split(",") for t in split(part.strip()) if t]
    terms = [m.group(0) for m in _TERM.finditer(pattern)]
    if _TERM.sub("", pattern).strip(": \t\n\r\f\v"):  # between terms only separators
        raise UsageError(f"cannot read the host pattern {pattern!r}")  # e.g. an unclosed `[`
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
    """The hosts one term (without its `&`/`!`) names, subscript applied, each once."""
    expr, subscript = _split_subscript(term)
    hosts = _enumerate(inventory, expr)
    if subscript is not None and hosts:  # Ansible: a subscript of no hosts is no hosts
        hosts = _apply_subscript(term, expr, hosts, *subscript)
    return list(dict.fromkeys(hosts))


def _split_subscript(term: str) -> tuple[str, tuple[int, int | None, bool] | None]:
    """`web[1:3]` -> ("web", (1, 3, False)); `web[-1]` -> ("web", (-1, None, True)); an open
    end is None. A regex never has one (`~web[12]` is all regex)."""
    if term.startswith("~"):
        return term, None
    m = _SUBSCRIPT.match(term)
    if m is None:
        if _NEGATIVE_RANGE.match(term):
            raise UsageError(
                f"host pattern '{term}': only a single index may be negative "
                "(web[-1]); a range counts from the first host (web[0:2], web[3:])"
            )
        return term, None
    expr, index, start, _, end = m.groups()
    if index is not None:
        return expr, (int(index), None, True)
    if not start and not end:
        raise UsageError(f"host pattern '{term}': a range needs a start or an end (web[0:2])")
    return expr, (int(start or 0), int(end) if end else None, False)


def _apply_subscript(
    term: str, expr: str, hosts: list[str], start: int, end: int | None, single: bool
) -> list[str]:
    if single:
        if -len(hosts) <= start < len(hosts):
            return [hosts[start]]
        count = f"{len(hosts)} host" + ("s" if len(hosts) > 1 else "")
        if len(set(hosts)) < len(hosts):
            count += " (as in Ansible, a host counts once per group and once by its name)"
        span = f"{expr}[0]" + (f" to {expr}[{len(hosts) - 1}]" if len(hosts) > 1 else "")
        last = f" ({expr}[-1] is the last)" if len(hosts) > 1 else ""
        raise UsageError(f"host pattern '{term}': {expr} has {count}, {span}{last}")
    if end is None:
        return hosts[start:]
    if end < start:
        raise UsageError(
            f"host pattern '{term}': the range ends before it starts (write {expr}[{end}:{start}])"
        )
    return hosts[start : end + 1]  # Ansible's end is inclusive


def _enumerate(inventory: Inventory, term: str) -> list[str]:
    """Groups the term matches give their hosts; host names are matched too when no group
    matched or the term is a glob or a regex (Ansible's _enumerate_matches). As there, the
    groups come in the order they were declared, each with its own hosts then its children's,
    and a host two of them hold counts twice: a subscript indexes this list."""
    if term in ("all", "*") and inventory.group("all") is None:  # no inventory given: `local`
        return [h.name for h in inventory.hosts]
    if term.startswith("~"):
        try:
            regex = re.compile(term[1:])
        except re.error as exc:
            raise UsageError(f"host pattern '{term}': bad regular expression ({exc})") from None
    else:
        regex = re.compile(fnmatch.translate(term))
    match = regex.match  # a regex too matches from the start of a name, as in Ansible
    groups = [g for g, _ in inventory.groups if match(g)]
    out: list[str] = []
    for g in groups:
        out += inventory.group(g) or ()
    special = term.startswith("~") or any(c in term for c in ".?*[")
    if not groups or special:
        out += [h.name for h in inventory.hosts if match(h.name)]
    if not out and not groups and not term.startswith("~") and not any(c in term for c in "?*["):
        names = [h.name for h in inventory.hosts] + [g for g, _ in inventory.groups]
        raise UsageError(
            f"host pattern: no host or group named '{term}'{did_you_mean(term, names)}"
        )
    return out
