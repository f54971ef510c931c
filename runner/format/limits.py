"""Time and size limits for what a runbook's own text makes the runner compute: templates
(render.py) and `expect.stdout_matches` regexes (actions.py).

Without them one line of a runbook could hang or exhaust the machine: nested `range(100000)`
loops ran for hours, `'a' * 3000000000` took 5.9 GB, and `a+b` over 1 MB of `a` kept a core at
100% for over ten minutes, deaf to Ctrl-C (Python's `re` does not return to the interpreter
while it matches). A template gets TEMPLATE_SECONDS of wall time (SIGALRM, in the main thread,
where every template is rendered), ranges of at most MAX_RANGE items and `*` / `**` results of
at most MAX_SIZE; a regex gets REGEX_SECONDS (the `regex` package's own timeout).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from functools import cache
from typing import Any

TEMPLATE_SECONDS = 2.0
REGEX_SECONDS = 2.0
MAX_RANGE = 10_000
MAX_SIZE = 1 << 20  # characters of a string (items of a list) a `*` may make
MAX_EXPONENT = 1_000


class TooCostly(Exception):
    """A template or a regex went over its time or size limit."""


@contextlib.contextmanager
def time_limit(seconds: float = TEMPLATE_SECONDS) -> Iterator[None]:
    """Raise TooCostly in the code inside once `seconds` of wall time have passed."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getitimer(signal.ITIMER_REAL)[0]
    ):
        yield  # signals reach the main thread only; an outer limit already runs
        return

    def expired(signum: int, frame: Any) -> None:
        raise TooCostly(f"the template took over {seconds:g}s to render (a loop too large?)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def matches(pattern: str, text: str) -> bool:
    """`re.search(pattern, text, re.M)`, given at most REGEX_SECONDS."""
    import regex  # type: ignore[import-untyped]

    try:
        return regex.search(pattern, text, regex.M, timeout=REGEX_SECONDS) is not None
    except TimeoutError:
        raise TooCostly(
            f"stdout_matches took over {REGEX_SECONDS:g}s (a pattern that backtracks?)"
        ) from None


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` does not compile (with the engine `matches` uses), or None."""
    import regex

    try:
        regex.compile(pattern, regex.M)
    except regex.error as exc:
        return str(exc)
    return None


def _bounded_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise TooCostly(f"range of {len(rng)} items (at most {MAX_RANGE})")
    return rng


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        for seq, n in ((left, right), (right, left)):
            size = len(seq) * n if isinstance(seq, str | list | tuple) and isinstance(n, int) else 0
            if size > MAX_SIZE:
                raise TooCostly(f"'*' would make {size} items or characters (at most {MAX_SIZE})")
    big_power = isinstance(right, int) and abs(right) > MAX_EXPONENT
    if operator == "**" and big_power and isinstance(left, int | float) and abs(left) > 1:
        raise TooCostly(f"'**' with an exponent over {MAX_EXPONENT}")


@cache
def bounded_environment() -> Any:
    """Jinja's immutable sandbox, with `*`, `**` and `range` bounded."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Bounded(ImmutableSandboxedEnvironment):
        # intercepted, they are neither folded at compile time nor run unchecked
        intercepted_binops = frozenset({"*", "**"})

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.globals["range"] = _bounded_range

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            _check_binop(operator, left, right)
            return super().call_binop(context, operator, left, right)

    return Bounded


def static_problem(ast: Any) -> str:
    """What evaluating the template would refuse whatever the values: an attribute the sandbox
    forbids, an operation on constants that always fails or is over a limit. `validate` and `run`
    both check this before anything runs (through render.names_used)."""
    from jinja2 import nodes
    from jinja2.sandbox import UNSAFE_FUNCTION_ATTRIBUTES, UNSAFE_METHOD_ATTRIBUTES

    unsafe = UNSAFE_FUNCTION_ATTRIBUTES | UNSAFE_METHOD_ATTRIBUTES | {"mro", "gi_frame", "gi_code"}
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        attr = node.attr if isinstance(node, nodes.Getattr) else None
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            attr = node.arg.value if isinstance(node.arg.value, str) else None
        if attr is not None and (attr.startswith("_") or attr in unsafe):
            return f"the template sandbox refuses attribute '{attr}'"
    ctx = nodes.EvalContext(bounded_environment()())
    for node in ast.find_all((nodes.BinExpr, nodes.Compare)):
        problem = _constant_failure(node, ctx)
        if problem:
            return problem
    return ""


def _constant_failure(node: Any, ctx: Any) -> str:
    from jinja2 import nodes

    try:
        if isinstance(node, nodes.BinExpr):
            left, right = node.left.as_const(ctx), node.right.as_const(ctx)
            ops: list[tuple[str, Any, Any]] = [(node.operator, left, right)]
        else:
            left = node.expr.as_const(ctx)
            ops = [(op.op, left, op.expr.as_const(ctx)) for op in node.ops[:1]]
    except nodes.Impossible:
        return ""  # not constant: depends on the values
    for op, a, b in ops:
        try:
            _check_binop(op, a, b)
            func = nodes._binop_to_func.get(op) or nodes._cmpop_to_func[op]
            func(a, b)
        except TooCostly as exc:
            return str(exc)
        except Exception as exc:  # what evaluating it at run time would raise
            return f"{a!r} {op} {b!r} always fails: {type(exc).__name__}: {exc}"
    return ""
