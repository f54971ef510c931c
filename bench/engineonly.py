#!/usr/bin/env python3
"""What the engine itself costs per step, without any command: an N-step runbook run in a fresh
process whose executor "runs" each command at once (it still makes the step's records durable
first, as a real executor does). Two state dirs: one on the disk the runs normally use, one on
tmpfs (/dev/shm), so the difference is the audit sync.

    .venv/bin/python bench/engineonly.py [--steps 2000] [-n 5]

Per step = (T(N) - T(1)) / (N - 1), medians over -n fresh processes. The rest of a real step is
the command: fork/exec of /bin/sh, the shell, its output (bench/local.sh has the whole).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen import write

_CHILD = r"""
import os, sys, time
from runner.execution.executors import pool
from runner.execution.executors.base import CommandResult, OutputDigest


class Instant:
    name, connected, tunnel = "local", True, None

    async def run(self, request, on_output, into=None):
        if request.ready is not None:
            request.ready()  # the step's records made durable, as before any real command
        out, err = into or (OutputDigest(), OutputDigest())
        out.feed(b"step\n")
        on_output("stdout", b"step\n")
        return CommandResult(exit=0, stdout=out.freeze(), stderr=err.freeze(), duration=0.0)

    def hurry(self):
        pass

    async def connect(self):
        return None

    async def close(self):
        return None


pool.Executors._make = lambda self, host: Instant()
sys.argv = ["runbook", *sys.argv[1:]]
from runner.cli import main

start = time.perf_counter()
code = main()
sys.stderr.write(f"ELAPSED {time.perf_counter() - start}\n")
sys.stderr.flush()
os._exit(code)
"""


def elapsed(runbook: Path, state: Path) -> float:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, "--state-dir", str(state), "run", str(runbook), "--quiet"],
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=False,
    )
    line = next((x for x in done.stderr.splitlines() if x.startswith("ELAPSED ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"the run failed (exit {done.returncode}):\n{done.stderr}")
    return float(line.split()[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("-n", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as disk, tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        for n in (1, a.steps):
            write(Path(disk), n)
        for label, base in (("state on disk", Path(disk)), ("state on tmpfs", Path(shm))):
            costs = []
            for i in range(a.n):
                state = base / f"state-{i}"
                big = elapsed(Path(disk) / f"bench-{a.steps}.yaml", state)
                one = elapsed(Path(disk) / "bench-1.yaml", state)
                costs.append((big - one) / (a.steps - 1) * 1000)
            print(f"{label:15} engine per step {statistics.median(costs):.3f} ms (median of {a.n})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
