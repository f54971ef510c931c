#!/usr/bin/env python3
"""Write benchmark runbooks bench-N.yaml into a directory.

    python3 bench/gen.py DIR [N ...]      # default N: 1 200

Each runbook has id bench-N (= file stem) and N steps `step-i` running `echo step-i`,
the same work as /work/shared/peer-bench/workloads/baseline/W1.sh.
"""

import pathlib
import sys


def write(dirpath: pathlib.Path, n: int) -> pathlib.Path:
    lines = [f"runbook: bench-{n}", f"title: Benchmark, {n} local echo steps", "steps:"]
    for i in range(1, n + 1):
        lines += [f"  - id: step-{i}", f"    run: echo step-{i}"]
    path = dirpath / f"bench-{n}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    out = pathlib.Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for n in [int(x) for x in argv[1:]] or [1, 200]:
        print(write(out, n))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
