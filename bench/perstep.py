#!/usr/bin/env python3
"""Per-step cost of A against B, measured in quadruples: A(N) B(N) A(1) B(1), repeated.

    python3 bench/perstep.py -n 9 --steps 200 --a 'CMD {n}' --b 'CMD {n}'

`{n}` in each command is replaced by the step count (N, then 1). Per quadruple, the per-step
cost of each side is (T(N) - T(1)) / (N - 1), and their ratio is taken within the quadruple, so
a machine whose speed drifts (other jobs on a shared 2-core box) moves both sides together.
Prints the median per-step cost of each side and the median and spread of the paired ratios.
Times are whole-process wall clock (peer-bench's compare.run_once, found via PEER_BENCH).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys

sys.path.insert(0, os.environ.get("PEER_BENCH", "/work/shared/peer-bench"))
from compare import run_once

METRICS = ("wall", "cpu")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=9)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    a = ap.parse_args()

    def argv(cmd: str, n: int) -> list[str]:
        return shlex.split(cmd.replace("{n}", str(n)))

    for cmd in (a.a, a.b):  # warm-up
        run_once(argv(cmd, a.steps))
    got: dict[str, dict[str, list[float]]] = {m: {"a": [], "b": [], "r": []} for m in METRICS}
    bad = 0
    for _ in range(a.n):
        t = {}
        for side, cmd in (("a", a.a), ("b", a.b)):
            for n in (a.steps, 1):
                r = run_once(argv(cmd, n))
                bad += r["rc"] != 0
                t[side, n] = r
        for m in METRICS:
            pa = (t["a", a.steps][m] - t["a", 1][m]) / (a.steps - 1) * 1000
            pb = (t["b", a.steps][m] - t["b", 1][m]) / (a.steps - 1) * 1000
            got[m]["a"].append(pa)
            got[m]["b"].append(pb)
            got[m]["r"].append(pa / pb if pb > 0 else float("inf"))
    med = statistics.median
    for m in METRICS:  # cpu: the whole process tree's user+sys (wait4), steadier under load
        g = got[m]
        print(
            f"{m:4} A per step ms: median {med(g['a']):.3f} (min {min(g['a']):.3f}, max {max(g['a']):.3f})"
        )
        print(
            f"{m:4} B per step ms: median {med(g['b']):.3f} (min {min(g['b']):.3f}, max {max(g['b']):.3f})"
        )
        qs = statistics.quantiles(g["r"], n=4) if len(g["r"]) > 1 else [g["r"][0]] * 3
        print(
            f"{m:4} A/B per step : median {med(g['r']):.2f} (quartiles {qs[0]:.2f}-{qs[2]:.2f}, "
            f"min {min(g['r']):.2f}, max {max(g['r']):.2f}, n={a.n})"
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
