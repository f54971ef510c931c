#!/usr/bin/env python3
"""Where one `runbook run` spends its wall time, phase by phase, in one process:

    .venv/bin/python bench/phases.py [-n RUNS] -- --state-dir DIR run RUNBOOK -i INVENTORY --quiet

Prints milliseconds since the interpreter started (medians over RUNS fresh processes): reading
the start-up cache of compiled dataclass methods (as the `runbook` command does), the imports
(asyncio, then runner's own, then asyncssh), planning, opening the run (lock, journal,
ledger), the SSH connection, the helper's start on the host, the steps, and the seal. Each run
is a new process, as an operator's is; the phases are read by wrapping the functions that begin
and end them, nothing else changes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import time, sys, os
T0 = time.perf_counter()
marks = []
def mark(label):
    marks.append((label, (time.perf_counter() - T0) * 1000))
from runner import dataclasscode; dataclasscode.install()  # as the runbook command does
mark("start-up cache read")
import asyncio; mark("asyncio imported")
import runner.commands.run as R; mark("runner imported")
from runner.execution.executors._asyncssh_import import asyncssh; mark("asyncssh imported")
import runner.execution.executors.ssh as S
import runner.execution.executors.connecting as C
import runner.execution.executors.helper as H
from runner.planning import planuse
from runner.cli import main

def around(mod, name, begin, end):
    f = getattr(mod, name)
    if asyncio.iscoroutinefunction(f):
        async def g(*a, **k):
            mark(begin); r = await f(*a, **k); mark(end); return r
    else:
        def g(*a, **k):
            mark(begin); r = f(*a, **k); mark(end); return r
    setattr(mod, name, g)

around(R, "prepare", "planning", "planned")
around(R, "opened", "opening the run", "run opened")
around(S, "open_connection", "connecting", "connected")
start = H.Helper.start.__func__
async def helper_start(cls, *a, **k):
    mark("helper starting"); r = await start(cls, *a, **k); mark("helper ready"); return r
H.Helper.start = classmethod(helper_start)
around(R, "seal", "steps done, sealing", "sealed")
sys.argv = ["runbook"] + sys.argv[1:]
code = main()
mark("main returned")
import json
sys.stderr.write("PHASES " + json.dumps(marks) + "\n")
sys.stderr.flush()
os._exit(code)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=5)
    ap.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    args = a.args[1:] if a.args[:1] == ["--"] else a.args
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    runs: list[list[tuple[str, float]]] = []
    for _ in range(a.n):
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        line = next((x for x in done.stderr.splitlines() if x.startswith("PHASES ")), None)
        if done.returncode != 0 or line is None:
            sys.stderr.write(done.stderr)
            return 1
        runs.append([(str(label), float(at)) for label, at in json.loads(line[len("PHASES ") :])])
    labels = [label for label, _ in runs[0]]
    previous = 0.0
    print(f"{'ms since start':>14}  {'phase took':>10}  (median of {a.n} runs)")
    for i, label in enumerate(labels):
        at = statistics.median(r[i][1] for r in runs if len(r) == len(labels))
        print(f"{at:14.1f}  {at - previous:10.1f}  {label}")
        previous = at
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
