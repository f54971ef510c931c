"""The semantic checks of a schema-valid runbook: names defined before use, captures, calls
(their params, no cycles), regular expressions, params' defaults. Every problem of a file is
reported at once, each with its `file:line:col: key.path`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import InvalidInput, Problem
from runner.format.limits import regex_problem
from runner.format.model import Action, Check, Runbook
from runner.format.render import BUILTIN_NAMES, RenderError, names_used
from runner.format.shellscan import COMMENT, DELIMITER, HEREDOC, QUOTED, Spot, spots
from runner.format.source import Document, KeyPath
from runner.format.suggest import did_you_mean
from runner.format.templated import action_templates

if TYPE_CHECKING:
    from runner.format.loader import Catalog

RESULT_NAME = "result"


def check(rb: Runbook, catalog: Catalog, *, known: set[str] = frozenset()) -> list[Problem]:  # type: ignore[assignment]
    assert rb.doc is not None
    doc = rb.doc
    out: list[Problem] = []
    stem = Path(rb.file).stem
    if rb.id != stem:
        out.append(
            doc.problem(("runbook",), f"the id '{rb.id}' must equal the file's stem '{stem}'")
        )
    out += _check_params(rb, doc)
    names = set(BUILTIN_NAMES) | {p.name for p in rb.params} | {n for n, _ in rb.host_vars} | known
    clash = {n for n, _ in rb.vars} & {p.name for p in rb.params}
    for name in sorted(clash):
        out.append(doc.problem(("vars", name), f"'{name}' is both a param and a var", key=True))
    for name, value in rb.vars:
        if isinstance(value, str):
            out += _names(doc, ("vars", name), value, names)
        names.add(name)
    for i, c in enumerate(rb.preconditions):
        out += _check_check(doc, ("preconditions", i), c, names)
    seen: dict[str, int] = {}
    for i, step in enumerate(rb.steps):
        where: KeyPath = ("steps", i)
        if step.id in seen:
            out.append(
                doc.problem(
                    (*where, "id"),
                    f"duplicate step id '{step.id}' (first at steps[{seen[step.id]}])",
                )
            )
        seen.setdefault(step.id, i)
        if step.when is not None and step.when not in ("true", "false"):
            out += _names(doc, (*where, "when"), step.when, names, expression=True)
        for j, c in enumerate(step.preconditions):
            out += _check_check(doc, (*where, "preconditions", j), c, names)
        if step.confirm:
            out += _names(doc, (*where, "confirm"), step.confirm, names)
        out += _check_action(doc, where, step.action, names)
        if step.action.with_ and step.action.kind != "call":
            out.append(doc.problem((*where, "with"), "'with' only goes with 'call'", key=True))
        if step.action.kind == "call":
            out += _check_call(rb, catalog, where, step.action)
        after = names | ({step.capture} if step.capture else set())
        if step.capture and step.capture in names:
            out.append(
                doc.problem(
                    (*where, "capture"), f"capture '{step.capture}' shadows an existing name"
                )
            )
        for j, c in enumerate(step.verify):
            out += _check_check(doc, (*where, "verify", j), c, after)
        for j, u in enumerate(step.rollback):
            out += _check_action(doc, (*where, "rollback", j), u.action, after)
            for k, c in enumerate(u.verify):
                out += _check_check(doc, (*where, "rollback", j, "verify", k), c, after)
        names = after
    return sorted(set(out), key=lambda p: (p.location.line, p.location.col, p.message))


def _check_params(rb: Runbook, doc: Document) -> Iterator[Problem]:
    from runner.format.params import ParamError, coerce

    for p in rb.params:
        if p.pattern is not None and _bad_regex(p.pattern):
            yield doc.problem(
                ("params", p.name, "pattern"), f"bad regular expression: {_bad_regex(p.pattern)}"
            )
        elif p.default is not None:
            try:
                coerce(p, p.default)
            except ParamError as exc:
                yield doc.problem(("params", p.name, "default"), str(exc))
        if p.secret and p.default is not None:
            yield doc.problem(
                ("params", p.name, "default"),
                "a secret param cannot have a default (it would sit in the file)",
            )


def _check_check(doc: Document, where: KeyPath, c: Check, names: set[str]) -> list[Problem]:
    return _check_action(doc, where, c.action, names)


def _check_action(doc: Document, where: KeyPath, a: Action, names: set[str]) -> list[Problem]:
    out: list[Problem] = []
    for keys, source, expression in action_templates(a):
        extra = {"level"} if keys[0] == "notify" else set()  # the level being paged
        if keys == ("expect", "that"):
            extra = {RESULT_NAME}
        out += _names(doc, (*where, *keys), source, names | extra, expression=expression)
    if a.kind == "run":
        out += [doc.problem((*where, "run"), m) for m in map(_misplaced, spots(a.text)) if m]
    # doc.values holds every path written in the file: `shell: sh` is as wrong as `shell: bash`
    if a.kind != "run" and (*where, "shell") in doc.values:
        out.append(
            doc.problem(
                (*where, "shell"),
                f"'shell' only goes with 'run' (this is a '{a.kind}' action)",
                key=True,
            )
        )
    if a.expect.stdout_matches is not None and regex_problem(a.expect.stdout_matches):
        out.append(
            doc.problem(
                (*where, "expect", "stdout_matches"),
                f"bad regular expression: {regex_problem(a.expect.stdout_matches)}",
            )
        )
    return out


def _misplaced(s: Spot) -> str | None:
    """Why a value cannot go where `s` stands, shell-quoted as a word (shellscan.py); `| raw` is
    the author's explicit choice."""
    if s.raw:
        return None
    what = f"'{{{{ {s.expr} }}}}'"
    if s.context == QUOTED:
        return f"{what} is inside shell quotes; template values are shell-quoted for you: remove the quotes, or write '| raw' if the value is shell syntax"
    if s.context == COMMENT:
        return f"{what} is inside a shell comment, where quotes mean nothing: a newline in the value would end the comment and run the rest; move it out of the comment"
    if s.context == HEREDOC and s.heredoc is not None:
        return (
            f"{what} is inside the here-document {s.heredoc.operator()}, where quotes mean nothing and $( ), backticks and $ in the value would run: "
            f"quote the delimiter ({s.heredoc.operator(quoted=True)}) and the value goes in as literal text, or write '| raw' if the value is shell syntax"
        )
    if s.context == DELIMITER:
        return f"{what} is in a here-document's delimiter: write the delimiter as literal text"
    return None


def _check_call(rb: Runbook, catalog: Catalog, where: KeyPath, a: Action) -> list[Problem]:
    assert rb.doc is not None
    doc = rb.doc
    try:
        target = catalog.load(a.text)
    except InvalidInput as exc:
        return [doc.problem((*where, "call"), f"cannot load '{a.text}': {exc.problems[0].message}")]
    out: list[Problem] = []
    cycle = _find_cycle(rb, catalog, [rb.id])
    if cycle:
        out.append(doc.problem((*where, "call"), f"call cycle: {' -> '.join(cycle)}"))
    given = {k for k, _ in a.with_}
    for key, _value in a.with_:  # their templates: _check_action
        if target.param(key) is None:
            out.append(
                doc.problem((*where, "with", key), f"'{a.text}' has no param '{key}'", key=True)
            )
    for p in target.params:
        if p.required and p.default is None and p.name not in given and not p.secret:
            out.append(doc.problem((*where, "with"), f"'{a.text}' needs param '{p.name}'"))
    return out


def _find_cycle(rb: Runbook, catalog: Catalog, chain: list[str]) -> list[str] | None:
    for step in rb.steps:
        if step.action.kind != "call":
            continue
        if step.action.text in chain:
            return [*chain, step.action.text]
        try:
            sub = catalog.load(step.action.text)
        except InvalidInput:
            continue
        found = _find_cycle(sub, catalog, [*chain, sub.id])
        if found:
            return found
    return None


def _names(
    doc: Document, where: KeyPath, source: str, known: set[str], *, expression: bool = False
) -> list[Problem]:
    if expression and "{{" in source:
        bare = source.replace("{{", "").replace("}}", "").strip()
        return [
            doc.problem(
                where,
                f"'when:' is already an expression: write `{bare}` without {{{{ }}}} (as in Ansible)",
            )
        ]
    try:
        used = names_used(source, expression=expression)
    except RenderError as exc:
        return [doc.problem(where, str(exc))]
    if not used - known:
        return []  # the common case; _captures walks every step: per template, it was O(n²)
    captures = _captures(doc)
    return [
        doc.problem(where, f"capture '{n}' is used before step '{captures[n]}' sets it")
        if n in captures
        else doc.problem(
            where,
            f"undefined name '{n}'{did_you_mean(n, known)} (not a param, var, earlier capture or declared host_var; declare inventory variables under host_vars:)",
        )
        for n in sorted(used - known)
    ]


def _captures(doc: Document) -> dict[str, str]:
    steps = doc.data.get("steps", []) if isinstance(doc.data, dict) else []
    return {s["capture"]: s.get("id", "?") for s in steps if isinstance(s, dict) and "capture" in s}


def _bad_regex(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    return None
