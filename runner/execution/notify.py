"""`notify:`: page the levels of an escalation chain over a webhook, one at a time, and wait for
each to acknowledge before paging the next (seed "Escalation Procedures": L1 acknowledges within
5 minutes, else L2 is paged, ...). Requests are made by the runner, not the target host: paging
must work when the host is the thing that is down.

Bodies: `webhook` (a plain JSON record), `slack` (an incoming webhook's `{"text": ...}`) and
`pagerduty` (an Events API v2 `trigger`, one dedup key per level). The acknowledgement is polled:
`ack.url` (GET) until `ack.that` holds over its answer (PagerDuty's REST API, a chat-ops bridge,
or any service that records acknowledgements).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from typing import Any

from runner.execution.actions import Outcome, result_view, unmet
from runner.execution.executors.base import CommandResult, OutputCallback, OutputDigest
from runner.execution.httpclient import send
from runner.format.model import Action, parse_duration
from runner.format.notify_spec import Notify
from runner.format.render import RenderError, render
from runner.planning.planned import Context

_TIMEOUT = 30.0  # seconds, for one page or one poll, from the start of the request to its end
# the seed's four severities, as PagerDuty's four
_PAGERDUTY_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}


def body(n: Notify, ctx: Context, level: str) -> dict[str, Any]:
    message, severity, key = render(n.message, ctx), render(n.severity, ctx), render(n.key, ctx)
    host = str(ctx.get("host", ""))
    if n.preset == "slack":
        return {"text": f"[{severity.upper() or 'INCIDENT'}] {level}: {message} ({key}, {host})"}
    if n.preset == "pagerduty":
        return {
            "routing_key": render(n.routing_key, ctx),
            "event_action": "trigger",
            "dedup_key": f"{key}-{level}" if level else key,
            "payload": {
                "summary": message,
                "source": host,
                "severity": _PAGERDUTY_SEVERITY.get(severity, "error"),
                "custom_details": {"level": level, "incident": key, "severity": severity},
            },
        }
    return {"incident": key, "level": level, "severity": severity, "summary": message, "host": host}


async def execute(action: Action, ctx: Context, on_output: OutputCallback) -> Outcome:
    n = action.notify
    assert n is not None
    out = OutputDigest()
    start = time.monotonic()

    def say(line: str) -> None:
        data = (line + "\n").encode()
        out.feed(data)
        on_output("stdout", data)

    levels = render(n.levels, ctx).replace(",", " ").split() or [""]
    url = _site(render(n.url, ctx))
    reason = ""
    for i, level in enumerate(levels):
        lctx = {**ctx, "level": level}
        sent = await _page(n, lctx, level, render(n.url, lctx), say)
        if n.ack is None:
            reason = reason or sent
            continue
        if not sent and await _acknowledged(n, lctx, level, say):
            return _outcome(out, start, url, "")
        if i + 1 < len(levels):
            say(f"escalating to {levels[i + 1]}")
        reason = f"nobody acknowledged ({', '.join(levels)})"
    return _outcome(out, start, url, reason)


async def _page(n: Notify, ctx: Context, level: str, url: str, say: Any) -> str:
    """'' when the page was accepted, else why not."""
    headers = {"Content-Type": "application/json"} | {k: render(v, ctx) for k, v in n.headers}
    data = json.dumps(body(n, ctx, level)).encode()
    answer = await send("POST", url, headers, data, _TIMEOUT)
    status, error = answer.status, answer.error
    who = f"{level} " if level else ""
    if error or status is None or not 200 <= status < 300:
        why = error.replace(url, _site(url)) if error else f"HTTP {status}"
        say(f"paging {who}via {n.preset} FAILED: {why}")
        return f"the page to {who or url} failed: {why}"
    say(f"paged {who}via {n.preset} (HTTP {status})")
    return ""


async def _acknowledged(n: Notify, ctx: Context, level: str, say: Any) -> bool:
    ack = n.ack
    assert ack is not None
    url = render(ack.url, ctx)
    headers = {k: render(v, ctx) for k, v in ack.headers}
    within, every = _seconds(render(ack.within, ctx)), _seconds(render(ack.every, ctx))
    deadline = time.monotonic() + within
    while True:
        # an answer that is not an acknowledgement, whatever it is (no answer, a 502 page, an
        # `ack.that` that cannot be evaluated on it), is "not yet": the level may still answer
        answer = await send("GET", url, headers, None, _TIMEOUT)
        if answer.error:
            last = answer.error.replace(url, _site(url))
        else:
            view = result_view(CommandResult(exit=0, stdout=_stream(answer.body)), answer.status)
            last = unmet(ack.that, ctx, view, "ack.that")
            if not last:
                say(f"acknowledged by {level or 'the receiver'}")
                return True
            last = f"HTTP {answer.status}, {last}"
        if time.monotonic() >= deadline:
            who = level or "the receiver"
            say(f"no acknowledgement from {who} within {within:g}s (last answer: {last})")
            return False
        await asyncio.sleep(min(every, max(0.0, deadline - time.monotonic())))


def _seconds(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError:
        raise RenderError(f"notify ack: {text!r} is not a duration (30s, 5m, 1h)") from None


def _site(url: str) -> str:
    """What the log may show of a webhook: its scheme and host. The path of a Slack or generic
    webhook is its secret (whoever has it can post)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.netloc else "(webhook)"


def _stream(data: bytes) -> Any:
    d = OutputDigest()
    d.feed(data)
    return d.freeze()


def _outcome(out: OutputDigest, start: float, url: str, reason: str) -> Outcome:
    result = CommandResult(
        exit=1 if reason else 0, stdout=out.freeze(), duration=time.monotonic() - start
    )
    return Outcome(result, f"NOTIFY {url}", None, reason)
