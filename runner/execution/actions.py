"""Execute one run:/http: action on one host and judge it against its `expect`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner.execution.executors.base import (
    CommandRequest,
    CommandResult,
    Digests,
    Executor,
    OutputCallback,
    StreamOutput,
)
from runner.format import limits
from runner.format.model import Action
from runner.format.render import RenderError, evaluate, render
from runner.planning.planned import Context


@dataclass(frozen=True)
class Outcome:
    result: CommandResult
    command: str  # what ran: the rendered command, or "METHOD url"
    status: int | None = None  # HTTP status
    reason: str = ""  # empty when the expectation holds

    @property
    def ok(self) -> bool:
        return not self.reason


async def execute(
    action: Action,
    ctx: Context,
    executor: Executor,
    on_output: OutputCallback,
    *,
    command: str | None = None,  # the rendered run: command, when the caller already has it
    into: Digests | None = None,  # the executor fills these: see Executor.run
    ready: Callable[[], None] | None = None,  # see CommandRequest.ready
) -> Outcome:
    """The action's outcome. Whatever a hostile value or a sick host makes it raise (a NUL in a
    value, a URL http.client rejects, exec's E2BIG) is the action failing, with the reason, so the
    failure policy applies: never a traceback that skips the rollback."""
    from runner.errors import StateError

    try:
        return await _execute(action, ctx, executor, on_output, command, into, ready)
    except (RenderError, StateError):
        raise  # a template error is reported as such; a journal that cannot be written stops all
    except Exception as exc:  # see the docstring
        result = CommandResult(exit=127, error=f"{type(exc).__name__}: {exc}")  # never ran
        return Outcome(result, command or "", None, result.error or "")


async def _execute(
    action: Action,
    ctx: Context,
    executor: Executor,
    on_output: OutputCallback,
    command: str | None,
    into: Digests | None,
    ready: Callable[[], None] | None,
) -> Outcome:
    if action.kind == "http":
        if ready is not None:
            ready()
        return await _http(action, ctx, executor)
    if action.kind == "notify":
        if ready is not None:
            ready()  # a page is sent like a command starts: what announces it is durable first
        from runner.execution import notify

        return await notify.execute(action, ctx, on_output)
    if command is None:
        command = render(action.text, ctx, shell=True)
    request = CommandRequest(
        command=command,
        env={k: render(v, ctx) for k, v in action.env},
        cwd=render(action.cwd, ctx) if action.cwd else None,
        sudo=_sudo_user(action, ctx),
        shell=action.shell,
        timeout=action.timeout,
        ready=ready,
    )
    from runner.execution.executors.base import ConnectionFailed

    try:
        result = await executor.run(request, on_output, into)
    except ConnectionFailed as exc:
        result = CommandResult(exit=255, error=str(exc))
    return Outcome(result, command, None, judge(action, result, None, ctx))


async def _http(action: Action, ctx: Context, executor: Executor) -> Outcome:
    assert action.http is not None
    h = action.http
    url = render(h.url, ctx)
    headers = {k: render(v, ctx) for k, v in h.headers}
    body = render(h.body, ctx).encode() if h.body is not None else None
    start = time.monotonic()
    # a remote host's request goes through its SSH connection, unless `from: runner` says not
    via = executor.tunnel if h.origin == "host" else None
    from runner.execution.httpclient import send  # http.client: ~6 ms a run that sends nothing

    answer = await send(h.method, url, headers, body, action.timeout, via=via, where=executor.name)
    data = answer.body
    stdout = StreamOutput(kept=data, tail=data[-4096:], size=len(data), sha256=_sha(data))
    result = CommandResult(
        exit=0 if not answer.error else 1,
        stdout=stdout,
        duration=time.monotonic() - start,
        timed_out=answer.timed_out,
        error=answer.error,
    )
    status = answer.status
    return Outcome(result, f"{h.method} {url}", status, judge(action, result, status, ctx))


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _sudo_user(action: Action, ctx: Context) -> str | None:
    """`sudo: "{{ user }}"` is a template like any other field (it was passed on unrendered)."""
    if not action.sudo:
        return None
    user = render(action.sudo, ctx)
    if not user.strip():
        raise RenderError(f"sudo: {action.sudo!r} renders to an empty user name")
    return user


def result_view(result: CommandResult, status: int | None) -> dict[str, Any]:
    """What `expect.that` and `ack.that` see as `result`. Output that is not JSON (a 502 page, an
    empty body) has no `result.json`: it is undefined, and an expression that reads it does not
    hold on this answer, with the reason "not JSON: '<html>...'" (see `unmet`)."""
    stdout = result.stdout.text
    parsed: Any
    try:
        parsed = json.loads(stdout)
    except ValueError:
        from jinja2 import StrictUndefined

        parsed = StrictUndefined(hint=_not_json(result.stdout))
    return {
        "exit": result.exit,
        "stdout": stdout,
        "stderr": result.stderr.text,
        "json": parsed,
        "status": status,
    }


def _not_json(out: StreamOutput) -> str:
    text = out.text.strip()
    if not text:
        return "not JSON: empty"
    # a whole line, as it is: the redactor (events.py) masks a secret only if it sees all of it,
    # not cut short or escaped by repr(); the output itself is in the log
    first, _, rest = text.partition("\n")
    first = first.strip()
    shown = f"'{first}'" + (" …" if rest else "") if len(first) <= 80 else f"{len(text)} characters"
    more = f" (only its first {len(out.kept)} bytes are read)" if out.size > len(out.kept) else ""
    return f"not JSON: {shown}{more}"


def unmet(expression: str, ctx: Context, view: dict[str, Any], what: str) -> str:
    """Why `expression` (`expect.that`, `ack.that`) does not hold over this answer, or "" when
    it does. One that cannot be evaluated on this answer (not JSON, a missing key, a value of
    another type) does not hold either: the attempt fails with that reason, and is retried as a
    false one is. A service that is starting answers a 502 page before its JSON; that error
    ended every retry at the first attempt, with no record of it."""
    try:
        if evaluate(expression, {**ctx, "result": view}):
            return ""
    except RenderError as exc:
        return f"{exc} ({what}: {expression})"
    return f"{what} is false: {expression}"


def cut_note(*streams: StreamOutput) -> str:
    """For the reason of a killed command whose output was not read to its end."""
    if any(s.cut for s in streams):
        return "; output cut: a process that left its group still held it"
    return ""


def judge(action: Action, result: CommandResult, status: int | None, ctx: Context) -> str:
    """Why the result misses the expectation, or "" when it holds."""
    e = action.expect
    if result.timed_out:
        return f"timed out after {action.timeout:g}s" + cut_note(result.stdout, result.stderr)
    if result.error and (action.kind != "http" or status is None):
        return result.error
    if action.kind == "http":
        wanted = e.status or (action.http.status if action.http else (200,))
        if status not in wanted:
            return f"HTTP status {status}, expected {_codes(wanted)}"
    else:
        wanted_exit = e.exit if e.exit is not None else (0,)
        if result.exit not in wanted_exit:
            return f"exit {result.exit}, expected {_codes(wanted_exit)}"
    text = result.stdout.text
    for needle in e.stdout_contains:
        if needle not in text:
            return f"stdout does not contain {needle!r}"
    if e.stdout_matches:
        try:
            if not limits.matches(e.stdout_matches, text):
                return f"stdout does not match {e.stdout_matches!r}"
        except limits.TooCostly as exc:
            return str(exc)
    if e.that:
        return unmet(e.that, ctx, result_view(result, status), "expect.that")
    return ""


def _codes(codes: tuple[int, ...]) -> str:
    return " or ".join(str(c) for c in codes)
