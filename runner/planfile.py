"""Saved plans: what a reviewer approved, and the proof that a run executes exactly that.

A plan file holds the rendered plan (secrets masked) and the SHA-256 of everything it was built
from: every runbook file it uses (called ones too), the inventory, the params (secret values
only as salted hashes) and the tool version. `run --plan` rebuilds the plan from the same inputs
and refuses, naming the difference, unless every one of them still matches.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner import __version__
from runner.audit import canonical, current_actor, now
from runner.errors import UsageError
from runner.plan import Plan

FORMAT = "runbook-plan/1"


def _files(plan: Plan) -> dict[str, str]:
    """Every runbook file the plan uses, by path, with its SHA-256."""
    out = {plan.runbook.file: plan.runbook.sha256}
    for steps in plan.steps.values():
        stack = list(steps)
        while stack:
            p = stack.pop()
            if p.step.action.kind == "call":
                sub = plan.catalog.load(p.step.action.text)
                out[sub.file] = sub.sha256
            stack.extend(p.children)
    return dict(sorted(out.items()))


def salted(value: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{value}".encode()).hexdigest()


def _params(plan: Plan, salt: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in plan.params.items():
        if name in plan.secret_params:
            out[name] = {"secret_sha256": salted(str(value), salt) if value is not None else None}
        else:
            out[name] = value
    return out


def body(plan: Plan, salt: str | None = None) -> dict[str, Any]:
    salt = salt or secrets.token_hex(16)
    return {
        "format": FORMAT,
        "tool_version": __version__,
        "runbook": plan.runbook.id,
        "runbook_file": plan.runbook.file,
        "files": _files(plan),
        "inventory": {"file": plan.inventory.file, "sha256": plan.inventory.sha256},
        "params": _params(plan, salt),
        "salt": salt,
        "run_id": plan.run_id,  # the plan's own; the run substitutes its id (see differences)
        "plan": plan.view(),
    }


def digest(data: dict[str, Any]) -> str:
    # `author` signs the hash, so it stands outside it; `expires` is inside: it cannot be moved
    outside = ("plan_hash", "created", "created_by", "author")
    fields = {k: v for k, v in data.items() if k not in outside}
    return hashlib.sha256(canonical(fields)).hexdigest()


def save(
    plan: Plan,
    path: Path,
    *,
    expires: str | None = None,
    author: Callable[[str], dict[str, Any] | None] | None = None,
) -> str:
    """Write the plan file; `author` signs its hash (planuse.authored)."""
    data = body(plan)
    if expires is not None:
        data["expires"] = expires
    data["created"] = now()
    data["created_by"] = current_actor()
    data["plan_hash"] = digest(data)
    signed = author(data["plan_hash"]) if author else None
    if signed is not None:
        data["author"] = signed
    path.write_text(
        json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
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


def differences(saved: dict[str, Any], plan: Plan) -> list[str]:
    """What changed between a saved plan and the plan rebuilt now; empty when identical."""
    now_ = body(plan, saved["salt"])
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
            out.append(f"param '{name}' differs from the plan")
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
