"""The model's dataclasses built from a document that already passed the JSON Schema
(schema.py): this only converts shapes and fills defaults, it does not re-check the format."""

from __future__ import annotations

import json
from typing import Any

from runner.format.model import (
    DEFAULT_CHECK_TIMEOUT,
    DEFAULT_HTTP_TIMEOUT,
    Action,
    ActionKind,
    Check,
    Expect,
    Http,
    Param,
    Rollout,
    Runbook,
    Step,
    Undo,
    parse_duration,
)
from runner.format.notify_spec import parse as parse_notify
from runner.format.source import Document, KeyPath, format_path


def _codes(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    return tuple(value) if isinstance(value, list) else (int(value),)


def _expect(raw: dict[str, Any] | None) -> Expect:
    raw = raw or {}
    contains = raw.get("stdout_contains", ())
    return Expect(
        exit=_codes(raw.get("exit")),
        stdout_contains=(contains,) if isinstance(contains, str) else tuple(contains),
        stdout_matches=raw.get("stdout_matches"),
        status=_codes(raw.get("status")),
        that=raw.get("that"),
    )


def _sudo(value: Any) -> str | None:
    if value is True:
        return "root"
    if value is False or value is None:
        return None
    return str(value)


def _action(raw: dict[str, Any], path: KeyPath, *, check: bool = False) -> Action:
    kind: ActionKind
    for kind in ("run", "http", "manual", "call", "notify"):
        if kind in raw:
            break
    else:  # pragma: no cover - the schema guarantees one
        raise ValueError(f"{format_path(path)}: no action")
    http = None
    text = raw[kind] if kind != "http" else raw["http"]["url"]
    notify = None
    if kind == "notify":  # its text, as plans and the log show it: who is paged, how
        notify = parse_notify(raw["notify"])
        text = f"page {notify.levels or 'the receiver'} via {notify.preset}"
    if kind == "http":
        h = raw["http"]
        body = h.get("body")
        headers = dict(h.get("headers", {}))
        if body is not None and not isinstance(body, str):
            body = json.dumps(body, sort_keys=True)
            headers.setdefault("Content-Type", "application/json")
        http = Http(
            url=h["url"],
            method=h.get("method", "GET"),
            headers=tuple(headers.items()),
            body=body,
            status=_codes(h.get("status")) or (200,),
            origin=h.get("from", "host"),
        )
    timeout = raw.get("timeout")
    if timeout is None and check:
        timeout = DEFAULT_CHECK_TIMEOUT
    if timeout is None and kind == "http":
        timeout = DEFAULT_HTTP_TIMEOUT
    return Action(
        kind=kind,
        text=str(text),
        path=format_path((*path, kind)),
        http=http,
        notify=notify,
        with_=tuple(raw.get("with", {}).items()),
        timeout=parse_duration(timeout) if timeout is not None else None,
        retries=int(raw.get("retries", 0)),
        delay=parse_duration(raw.get("delay", 0)),
        env=tuple((str(k), _env_value(v)) for k, v in raw.get("env", {}).items()),
        cwd=raw.get("cwd"),
        sudo=_sudo(raw.get("sudo")),
        shell=raw.get("shell", "sh"),
        expect=_expect(raw.get("expect")),
    )


def check_from(raw: dict[str, Any], path: KeyPath, name: str) -> Check:
    """A checklist's `check:` (a run action with its own expect and timeout) as a runbook Check;
    no default timeout, as a checklist's check never had one."""
    return Check(name=name, action=_action(raw, path))


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _checks(raw: list[dict[str, Any]] | None, path: KeyPath) -> tuple[Check, ...]:
    out = []
    for i, item in enumerate(raw or []):
        action = _action(item, (*path, i), check=True)
        out.append(Check(name=item.get("name") or _default_name(action), action=action))
    return tuple(out)


def _default_name(action: Action) -> str:
    if action.kind == "http" and action.http:
        return f"{action.http.method} {action.http.url}"
    first = action.text.strip().splitlines()[0] if action.text.strip() else action.kind
    return first if len(first) <= 70 else first[:67] + "..."


def _step(raw: dict[str, Any], index: int) -> Step:
    path: KeyPath = ("steps", index)
    action = _action(raw, path)
    undo = tuple(
        Undo(
            name=item.get("name") or _default_name(_action(item, (*path, "rollback", i))),
            action=_action(item, (*path, "rollback", i)),
            verify=_checks(item.get("verify"), (*path, "rollback", i, "verify")),
        )
        for i, item in enumerate(raw.get("rollback", []))
    )
    when = raw.get("when")
    on = raw.get("on")
    return Step(
        id=raw["id"],
        name=raw.get("name") or raw["id"],
        action=action,
        path=format_path(path),
        description=raw.get("description", ""),
        when=None if when is None else str(when).lower() if isinstance(when, bool) else when,
        preconditions=_checks(raw.get("preconditions"), (*path, "preconditions")),
        confirm=raw.get("confirm"),
        verify=_checks(raw.get("verify"), (*path, "verify")),
        rollback=undo,
        capture=raw.get("capture"),
        continue_on_error=bool(raw.get("continue_on_error", False)),
        safe=bool(raw.get("safe", False)),
        on=None if on is None else ((on,) if isinstance(on, str) else tuple(on)),
    )


def _rollout(raw: dict[str, Any] | None) -> Rollout | None:
    if raw is None:
        return None
    batch = raw.get("batch", 1)
    pause = raw.get("pause", "none")
    return Rollout(
        batches=tuple(batch) if isinstance(batch, list) else (batch,),
        max_failures=int(raw.get("max_failures", 0)),
        pause=pause if pause in ("confirm", "none") else parse_duration(pause),
        on_batch_failure=raw.get("on_batch_failure", "rollback-failed"),
    )


def runbook_from_document(doc: Document, sha256: str) -> Runbook:
    data: dict[str, Any] = doc.data
    targets = data.get("targets", "local")
    return Runbook(
        id=data["runbook"],
        title=data.get("title") or data["runbook"],
        file=doc.file,
        sha256=sha256,
        steps=tuple(_step(s, i) for i, s in enumerate(data["steps"])),
        description=data.get("description", ""),
        owner=data.get("owner", ""),
        tags=tuple(data.get("tags", ())),
        change=data.get("change"),
        params=tuple(
            Param(
                name=name,
                type=p.get("type", "string"),
                default=_as_written(doc, p, ("params", name, "default"), p.get("default")),
                choices=tuple(
                    _as_written(doc, p, ("params", name, "choices", i), c)
                    for i, c in enumerate(p.get("choices", ()))
                ),
                required=bool(p.get("required", False)),
                secret=bool(p.get("secret", False)),
                description=p.get("description", ""),
                pattern=p.get("pattern"),
            )
            for name, p in (data.get("params") or {}).items()
        ),
        vars=tuple((data.get("vars") or {}).items()),
        host_vars=tuple((data.get("host_vars") or {}).items()),
        targets=(targets,) if isinstance(targets, str) else tuple(targets),
        rollout=_rollout(data.get("rollout")),
        on_failure=data.get("on_failure", "rollback"),
        preconditions=_checks(data.get("preconditions"), ("preconditions",)),
        doc=doc,
    )


def _as_written(doc: Document, param: dict[str, Any], path: KeyPath, value: Any) -> Any:
    """A string param's default or choice as the file writes it (`0755`, not YAML's 493)."""
    if param.get("type", "string") == "string" and path in doc.written:
        return doc.written[path]
    return value
