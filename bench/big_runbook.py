"""Write a 12 MB runbook (17,424 steps, each one template; under the loader's 100,000-node cap)
for timing `runbook validate` on it (issue 18):

    python bench/big_runbook.py /tmp/big/runbooks/big.yaml
    cd /tmp/big && time runbook validate runbooks/big.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path


def write(path: Path, size: int = 12_000_000) -> int:
    lines = ["runbook: big", "params: {v: {type: string, default: x}}", "steps:"]
    pad = " ".join(f"w{j}" for j in range(150))
    total = n = 0
    while total < size:
        step = f'  - id: s{n}\n    run: "echo step {n} {{{{ v }}}} {pad}"'
        lines.append(step)
        total += len(step) + 1
        n += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return n


if __name__ == "__main__":
    print(write(Path(sys.argv[1])), "steps")
