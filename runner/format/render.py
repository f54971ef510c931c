"""Jinja2 in a sandbox with StrictUndefined, and shell quoting of every substituted value.

Inside `run:` every `{{ expression }}` is passed through `shlex.quote` by the environment's
`finalize` hook, so a value of `a b; rm -rf /` is one argument, never a second command. The
runbook's own literal text is not touched. `{{ x | raw }}` opts out, visibly, for values that are
meant to be shell syntax (e.g. a service control command of several words). In the body of a
here-document with a quoted delimiter (`<<'EOF'`) nothing is shell syntax: a value goes in as it
is, and must not end the here-document (shellscan.py; `validate` refuses the other places where
word quoting is wrong).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from runner.format.shellscan import LITERAL, MARK, Heredoc, literal_lines, spots

if TYPE_CHECKING:
    from runner.format.redact import Redactor

BUILTIN_NAMES = frozenset({"host", "run_id"})
# names Jinja itself provides (globals), never "undefined" in a runbook
JINJA_GLOBALS = frozenset(
    {
        "range",
        "dict",
        "lipsum",
        "cycler",
        "joiner",
        "namespace",
        "true",
        "false",
        "none",
        "True",
        "False",
        "None",
    }
)


class RenderError(Exception):
    """A template could not be rendered (undefined name, syntax error, sandbox violation, an
    operation its values do not support), or what it rendered is not valid where it goes."""


# What Jinja lets through from an operation on the values themselves (`{{ c + 1 }}` with a
# string, `| int(base=99)`, a division by zero): the template's failure like any other, not a
# crash. With a capture it only happens at run time, where it is the step's failure.
_VALUE_ERRORS = (TypeError, ValueError, LookupError, AttributeError, ArithmeticError)


class Raw(str):
    """A value marked `| raw`: substituted into a shell command without quoting."""

    __slots__ = ()


def _quote(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "''"
    if isinstance(value, bool):
        return "true" if value else "false"
    return shlex.quote(str(value))


def _arg(value: Any) -> str:
    """`{{ v | arg }}`: a value given to a command as an operand, never as an option. Quoting
    keeps `--use-compress-program=sh x` one word, but `tar -cf x.tar {{ v }}` still reads that
    word as an option and runs the program: a value that starts with `-` is refused."""
    text = "" if value is None else str(value)
    if text.startswith("-"):
        raise RenderError(
            f"| arg: the value {text!r} starts with '-': the command would read it as an option"
        )
    return text


def _plain(value: Any) -> Any:
    return "" if value is None else value


@cache
def _env(shell: bool) -> Any:
    from jinja2 import StrictUndefined

    from runner.format.limits import bounded_environment

    env = bounded_environment()(
        undefined=StrictUndefined,
        finalize=_quote if shell else _plain,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["raw"] = lambda v: Raw("" if v is None else v)
    env.filters["arg"] = _arg
    env.filters["quote"] = lambda v: shlex.quote(str(v))
    if shell:
        env.filters["_literal"] = _literal
    return env


def _literal(value: Any) -> Raw:
    """A value in the body of a quoted here-document (`<<'EOF'`): literal text, so not quoted;
    marked, so that `literal_lines` can find the lines it touched."""
    text = (
        ""
        if value is None
        else ("true" if value else "false")
        if isinstance(value, bool)
        else str(value)
    )
    if MARK in text:
        raise RenderError("a value in a here-document holds a NUL character")
    return Raw(MARK + text + MARK)


@cache
def _shell_source(source: str) -> tuple[str, frozenset[Heredoc]]:
    """`source` with each expression in a quoted here-document's body passed through `_literal`,
    and those here-documents (shellscan.py)."""
    found = [s for s in spots(source) if s.context == LITERAL]
    if not found:
        return source, frozenset()
    out, pos = [], 0
    for s in found:
        m = s.match
        out += [
            source[pos : m.start()],
            f"{{{{{m.group(1)} ({m.group(2)}) | _literal {m.group(3)}}}}}",
        ]
        pos = m.end()
    out.append(source[pos:])
    return "".join(out), frozenset(s.heredoc for s in found if s.heredoc)


@cache
def _template(source: str, shell: bool) -> Any:
    from jinja2 import TemplateError

    try:
        return _env(shell).from_string(source)
    except TemplateError as exc:
        raise RenderError(_describe(exc)) from None


@cache
def _expression(source: str) -> Any:
    from jinja2 import TemplateError

    try:
        return _env(False).compile_expression(source, undefined_to_none=False)
    except TemplateError as exc:
        raise RenderError(_describe(exc)) from None


def has_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def render(source: str, context: Mapping[str, Any], *, shell: bool = False) -> str:
    """Render a template; `shell=True` quotes every substituted value for /bin/sh."""
    if not has_template(source):
        return source
    from jinja2 import TemplateError

    from runner.format.limits import TooCostly, time_limit

    docs: frozenset[Heredoc] = frozenset()
    if shell:
        source, docs = _shell_source(source)
    try:
        with time_limit():
            text = str(_template(source, shell).render(context))
    except TemplateError as exc:
        raise RenderError(_describe(exc)) from None
    except TooCostly as exc:
        raise RenderError(str(exc)) from None
    except _VALUE_ERRORS as exc:
        raise RenderError(f"{type(exc).__name__}: {exc}") from None
    try:
        return literal_lines(text, docs) if docs else text
    except ValueError as exc:
        raise RenderError(str(exc)) from None


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """Evaluate a Jinja expression (`when`, `expect.that`). A value that is undefined (`x.missing`,
    the `result.json` of an answer that is not JSON) is an error here, with its reason: returned,
    it raised UndefinedError at the caller's `if`, past every handler of RenderError."""
    from jinja2 import TemplateError, Undefined

    from runner.format.limits import TooCostly, time_limit

    try:
        with time_limit():
            value = _expression(expression)(**context)
            if isinstance(value, Undefined):
                value._fail_with_undefined_error()
            return value
    except TemplateError as exc:
        raise RenderError(_describe(exc)) from None
    except TooCostly as exc:
        raise RenderError(str(exc)) from None
    except _VALUE_ERRORS as exc:
        raise RenderError(f"{type(exc).__name__}: {exc}") from None


def why_false(expression: str, context: Mapping[str, Any], redactor: Redactor) -> str:
    """The reason a `when:` is false, with the values it looked at: `when is false: mode ==
    'full', where mode='quick'`. Each value is masked (the run's redactor) before it is written
    out and before it is shortened: repr() escapes a string in ways the redactor cannot follow
    (`\\'` when it holds both quotes, `\\x7f`), and a long secret cut to `...` would no longer be
    recognised, and leak its start."""
    try:
        names = sorted(names_used(expression, expression=True))
    except RenderError:
        names = []
    values = ", ".join(
        f"{n}={_short(redactor.text(repr(redactor.value(context[n]))))}"
        for n in names
        if n in context
    )
    return f"when is false: {expression}" + (f", where {values}" if values else "")


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def names_used(source: str, *, expression: bool = False) -> set[str]:
    """Free variable names of a template or expression (syntax errors raise RenderError)."""
    if not expression and not has_template(source):
        return set()
    from jinja2 import TemplateError, meta

    from runner.format.limits import static_problem

    text = "{{ (" + source + ") }}" if expression else source
    try:
        ast = _env(False).parse(text)
        names = set(meta.find_undeclared_variables(ast))  # compiles: an unknown filter fails here
    except TemplateError as exc:
        raise RenderError(_describe(exc)) from None
    problem = static_problem(ast)  # what the sandbox or evaluation would refuse whatever the values
    if problem:
        raise RenderError(problem)
    return names - JINJA_GLOBALS


def always_used(source: str, *, expression: bool = False) -> set[str]:
    """The free names a template evaluates whatever the values, where an undefined one fails:
    not the operand of `| default` or of a test (`x is defined`), not in a part that may not
    run (an `if` or `for` body, either side of `a if c else b`, the right of `and`/`or`, a
    `set`). Conservative: a name left out may still fail; a name given always would."""
    if not expression and not has_template(source):
        return set()
    from jinja2 import TemplateError, meta, nodes

    text = "{{ (" + source + ") }}" if expression else source
    try:
        ast = _env(False).parse(text)
        free = set(meta.find_undeclared_variables(ast))
    except TemplateError:
        return set()  # validate reports it
    found: set[str] = set()

    def walk(node: nodes.Node) -> None:
        if isinstance(node, nodes.Name):
            if node.ctx == "load":
                found.add(node.name)
            return
        if isinstance(node, nodes.Filter) and node.name in ("default", "d"):
            children: list[nodes.Node] = [*node.args, *(k.value for k in node.kwargs)]
        elif isinstance(node, nodes.Test):
            children = [*node.args, *(k.value for k in node.kwargs)]
        elif isinstance(node, nodes.If | nodes.CondExpr):
            children = [node.test]
        elif isinstance(node, nodes.And | nodes.Or):
            children = [node.left]
        elif isinstance(node, nodes.For):
            children = [node.iter]
        elif isinstance(node, nodes.Assign | nodes.AssignBlock | nodes.Macro | nodes.CallBlock):
            children = []
        else:
            children = list(node.iter_child_nodes())
        for child in children:
            walk(child)

    walk(ast)
    return found & free


def _describe(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    if type(exc).__name__ == "UndefinedError":
        name = re.fullmatch(r"'([^']+)' is undefined", message)  # not a hint that quotes one
        return f"undefined name '{name.group(1)}'" if name else message
    if type(exc).__name__ == "TemplateSyntaxError":
        return f"template syntax error: {message}"
    return message
