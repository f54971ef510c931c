"""What a `notify:` action says (validated input; runner/execution/notify.py executes it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PRESETS = ("webhook", "slack", "pagerduty")


@dataclass(frozen=True)
class Ack:
    """How to learn that the paged level acknowledged: poll `url` until `that` holds."""

    url: str
    that: str = "result.json.acknowledged"
    headers: tuple[tuple[str, str], ...] = ()
    within: str = "5m"  # template: how long one level has to acknowledge before the next is paged
    every: str = "10s"  # template


@dataclass(frozen=True)
class Notify:
    url: str
    preset: str = "webhook"
    message: str = ""
    levels: str = ""  # template: the escalation chain, levels separated by spaces or commas
    severity: str = ""
    key: str = "{{ run_id }}"  # template: the incident's deduplication key
    routing_key: str = ""  # PagerDuty Events v2: the integration key (template; may use level)
    headers: tuple[tuple[str, str], ...] = ()
    ack: Ack | None = None


def parse(raw: dict[str, Any]) -> Notify:
    ack = raw.get("ack")
    return Notify(
        url=raw["url"],
        preset=raw.get("preset", "webhook"),
        message=raw.get("message", ""),
        levels=" ".join(raw["levels"])
        if isinstance(raw.get("levels"), list)
        else raw.get("levels", ""),
        severity=raw.get("severity", ""),
        key=raw.get("key", "{{ run_id }}"),
        routing_key=raw.get("routing_key", ""),
        headers=tuple((raw.get("headers") or {}).items()),
        ack=None
        if ack is None
        else Ack(
            url=ack["url"],
            that=ack.get("that", "result.json.acknowledged"),
            headers=tuple((ack.get("headers") or {}).items()),
            within=str(ack.get("within", "5m")),
            every=str(ack.get("every", "10s")),
        ),
    )


def templates(n: Notify) -> list[tuple[tuple[str, ...], str]]:
    """(key path under `notify`, template) of every templated field, for the name checks."""
    out: list[tuple[tuple[str, ...], str]] = [(("url",), n.url), (("message",), n.message)]
    out += [(("levels",), n.levels)]
    out += [(("severity",), n.severity), (("key",), n.key), (("routing_key",), n.routing_key)]
    out += [(("headers", k), v) for k, v in n.headers]
    if n.ack is not None:
        out += [(("ack", "url"), n.ack.url), (("ack", "within"), n.ack.within)]
        out += [(("ack", "every"), n.ack.every)]
        out += [(("ack", "headers", k), v) for k, v in n.ack.headers]
    return out
