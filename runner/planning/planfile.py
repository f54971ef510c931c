"""Saved plans: what a reviewer approved, and the proof that a run executes exactly that.

A plan file holds the rendered plan (secrets masked) and the SHA-256 of everything it was built
from: every runbook file it uses (called ones too), the inventory, the params (secret values
only as HMACs keyed by the state dir) and the tool version. `run --plan` rebuilds the plan from the same inputs
and refuses, naming the difference, unless every one of them still matches.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner import __version__
from runner.audit.journal import canonical, current_actor, now
from runner.errors import StateError, UsageError
from runner.planning.planned import Plan
from runner.safefs import open_beneath, write_file

FORMAT = "runbook-plan/2"  # 2: a secret param as an HMAC keyed by the state dir, not a salted hash
KEY_FILE = "plan-secrets.key"


def _key(state_dir: Path) -> bytes:
    """The state dir's key for secret params (32 random bytes, 0600, made on first use).

    Made whole in a temp file and linked into place, so a command reading it never finds it
    half-made (two first plans at once: the second read it empty and was told to delete it); if
    another command linked its key first, that one is the key."""
    path = state_dir / KEY_FILE
    if not path.exists():
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
        fd, _ = open_beneath(state_dir, tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
                _sync_dir(state_dir)  # plans are keyed by it: its name must survive a crash
        finally:
            tmp.unlink(missing_ok=True)
    fd, _ = open_beneath(state_dir, path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        key = f.read()
    if len(key) != 32:
        raise StateError(f"{path}: not a key of 32 bytes (delete it to make a new one)")
    return key


def _sync_dir(where: Path) -> None:
    fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def files(plan: Plan) -> dict[str, str]:
    """Every runbook file the plan uses, by path, with its SHA-256 (the top-level one and every
    one it calls): what a saved plan and a run's `run.started` record, and resume compares."""
    out = {plan.runbook.file: plan.runbook.sha256}
    called: set[str] = set()  # each called runbook loaded once, not once per host (a fleet)
    for steps in plan.steps.values():
        stack = list(steps)
        while stack:
            p = stack.pop()
            if p.step.action.kind == "call" and p.step.action.text not in called:
                called.add(p.step.action.text)
                sub = plan.catalog.load(p.step.action.text)
                out[sub.file] = sub.sha256
            stack.extend(p.children)
    return dict(sorted(out.items()))


def _params(plan: Plan, key: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in plan.params.items():
        if name in plan.secret_params:
            # a salted SHA-256 of a 6-digit PIN, salt beside it, fell to a brute force in under a
            # second, and plan files are passed around for review: an HMAC keyed by the state
            # dir's key cannot be checked, nor guessed, without that key
            mac = (
                hmac.new(key, str(value).encode(), "sha256").hexdigest()
                if value is not None
                else None
            )
            out[name] = {"secret_hmac": mac}
        else:
            out[name] = value
    return out


def body(plan: Plan, state_dir: Path) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "tool_version": __version__,
        "runbook": plan.runbook.id,
        "runbook_file": plan.runbook.file,
        "files": files(plan),
        "inventory": inventory_record(plan),
        "params": _params(plan, _key(state_dir)),
        "run_id": plan.run_id,  # the plan's own; the run substitutes its id (see differences)
        "plan": plan.view(),
    }


def inventory_record(plan: Plan) -> dict[str, Any]:
    """The inventory's file(s), digest and --limit: what `run --plan` and `resume` load again
    (`sources` and `limit` only when there are several or one was given)."""
    inv = plan.inventory
    out: dict[str, Any] = {"file": inv.file, "sha256": inv.sha256}
    if len(inv.sources) > 1:
        out["sources"] = list(inv.sources)
    if inv.limit is not None:
        out["limit"] = inv.limit
    return out


def digest(data: dict[str, Any]) -> str:
    # `author` signs the hash, so it stands outside it; `expires` is inside: it cannot be moved
    outside = ("plan_hash", "created", "created_by", "author")
    fields = {k: v for k, v in data.items() if k not in outside}
    return hashlib.sha256(canonical(fields)).hexdigest()


def save(
    plan: Plan,
    path: Path,
    state_dir: Path,
    *,
    expires: str | None = None,
    author: Callable[[str], dict[str, Any] | None] | None = None,
) -> str:
    """Write the plan file; `author` signs its hash (planuse.authored)."""
    data = body(plan, state_dir)
    if expires is not None:
        data["expires"] = expires
    # inside the hash, as `expires` is (`created`, outside it, can be edited): no approval of the
    # plan can be dated before it (planuse.dating)
    data["made"] = data["created"] = now()
    data["created_by"] = current_actor()
    data["plan_hash"] = digest(data)
    signed = author(data["plan_hash"]) if author else None
    if signed is not None:
        data["author"] = signed
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_file(path, text.encode("utf-8"), 0o600)  # it holds digests of secrets: not for others
    return str(data["plan_hash"])


def load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such plan file") from None
    except ValueError as exc:
        raise UsageError(f"{path}: not a plan file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{path}: not a plan file of format {FORMAT}")
    if data.get("plan_hash") != digest(data):
        raise UsageError(
            f"{path}: the plan file was edited after it was saved (its hash does not match)"
        )
    return data


def differences(saved: dict[str, Any], plan: Plan, state_dir: Path) -> list[str]:
    """What changed between a saved plan and the plan rebuilt now; empty when identical."""
    now_ = body(plan, state_dir)
    out = []
    if now_["tool_version"] != saved["tool_version"]:
        out.append(f"tool version {saved['tool_version']} -> {now_['tool_version']}")
    for f in sorted(set(saved["files"]) | set(now_["files"])):
        if saved["files"].get(f) != now_["files"].get(f):
            out.append(f"runbook file {f} changed since the plan was made")
    if saved["inventory"] != now_["inventory"]:
        out.append(
            f"inventory changed ({saved['inventory']['file']} -> {now_['inventory']['file']}, or its content)"
        )
    for name in sorted(set(saved["params"]) | set(now_["params"])):
        if saved["params"].get(name) != now_["params"].get(name):
            secret = isinstance(now_["params"].get(name), dict)
            where = " (or the plan was made with another state dir)" if secret else ""
            out.append(f"param '{name}' differs from the plan{where}")
    if not out and _rendered(saved["plan"], saved.get("run_id")) != _rendered(
        now_["plan"], plan.run_id
    ):
        out.append("the rendered plan differs")
    return out


def _rendered(view: dict[str, Any], run_id: str | None) -> bytes:
    """The plan with its run id as a placeholder: the one value that must differ between the
    plan and its run (`{{ run_id }}` in a command). Run ids are `[0-9A-Za-z-]` plus a random
    suffix, so the text of one appears nowhere else and needs no escaping."""
    text = canonical(view)
    return text.replace(run_id.encode(), b"\0run_id\0") if run_id else text
