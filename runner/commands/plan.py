from __future__ import annotations

import json
from typing import Any

from runner.commands.common import prepare


def plan(
    name: str,
    assignments: list[str],
    params_file: str | None,
    inventory: str | None,
    *,
    as_json: bool = False,
) -> int:
    """Print every step per host with its rendered command. Nothing is executed."""
    p = prepare(name, assignments, params_file, inventory)
    view = p.view()
    if as_json:
        print(json.dumps({**view, "plan_hash": p.digest()}, indent=2, sort_keys=True))
        return 0
    print(f"plan for {view['runbook']} (sha256 {view['runbook_sha256'][:12]}), hash {p.digest()}")
    if view["params"]:
        print("params: " + ", ".join(f"{k}={v}" for k, v in view["params"].items()))
    for host, steps in view["hosts"].items():
        print(f"host {host}:")
        _steps(steps, "  ")
    return 0


def _steps(steps: list[dict[str, Any]], indent: str) -> None:
    for s in steps:
        reason = f" ({s['reason']})" if s.get("reason") else ""
        print(f"{indent}{s['id']}: {s['status']}{reason}")
        for kind in ("run", "http", "manual", "call"):
            if kind in s:
                text = str(s[kind]).rstrip().replace("\n", "\n" + indent + "    ")
                print(f"{indent}    {kind}: {text}")
        if s.get("steps"):
            _steps(s["steps"], indent + "  ")
