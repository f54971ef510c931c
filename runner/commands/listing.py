from __future__ import annotations

import json

from runner.loader import discover


def list_files(*, as_json: bool = False) -> int:
    found = {kind: [str(p) for p in discover(kind)] for kind in ("runbook", "checklist")}
    if as_json:
        print(json.dumps(found, indent=2))
        return 0
    for kind, paths in found.items():
        print(f"{kind}s:" if paths else f"{kind}s: none found")
        for p in paths:
            print(f"  {p}")
    return 0
