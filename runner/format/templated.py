"""Where the templates are: every templated field of an action or a step, with its key path
(relative to the step) and whether it is an expression. The checks that must see them all use
this one list: names defined before use (semantics.py), and at plan time a capture that is never
set on a host (planning/planner.py)."""

from __future__ import annotations

from collections.abc import Iterator

from runner.format.model import Action, Step
from runner.format.source import KeyPath

Template = tuple[KeyPath, str, bool]  # (key path, source, an expression such as `when:`)


def action_templates(a: Action) -> Iterator[Template]:
    if a.kind in ("run", "manual"):
        yield (a.kind,), a.text, False
    elif a.kind == "http" and a.http is not None:
        yield ("http", "url"), a.http.url, False
        for key, value in a.http.headers:
            yield ("http", "headers", key), value, False
        if a.http.body:
            yield ("http", "body"), a.http.body, False
    elif a.kind == "notify" and a.notify is not None:
        from runner.format.notify_spec import templates

        for keys, text in templates(a.notify):
            yield ("notify", *keys), text, False
    elif a.kind == "call":
        for key, value in a.with_:
            if isinstance(value, str):
                yield ("with", key), value, False
    for key, value in a.env:
        yield ("env", key), value, False
    if a.cwd:
        yield ("cwd",), a.cwd, False
    if a.sudo:
        yield ("sudo",), a.sudo, False
    if a.expect.that:
        yield ("expect", "that"), a.expect.that, True


def step_templates(step: Step) -> Iterator[Template]:
    """What the step may evaluate once its `when:` holds: its checks, its question, its action,
    its verification and its rollback."""
    for j, c in enumerate(step.preconditions):
        yield from _under(("preconditions", j), action_templates(c.action))
    if step.confirm:
        yield ("confirm",), step.confirm, False
    yield from action_templates(step.action)
    for j, c in enumerate(step.verify):
        yield from _under(("verify", j), action_templates(c.action))
    for j, u in enumerate(step.rollback):
        yield from _under(("rollback", j), action_templates(u.action))
        for k, c in enumerate(u.verify):
            yield from _under(("rollback", j, "verify", k), action_templates(c.action))


def _under(where: KeyPath, found: Iterator[Template]) -> Iterator[Template]:
    for keys, source, expression in found:
        yield (*where, *keys), source, expression
