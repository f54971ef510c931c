#!/usr/bin/env python3
"""Where a local step's time goes: runs an N-step runbook in-process under cProfile, twice
(N and 1 steps), and splits the difference per step into fork/exec, audit sync, waiting for the
command (epoll), and the rest (event handling: rendering, records, hashing, console, asyncio).

    .venv/bin/python bench/breakdown.py [N]        (default 200; writes to a temp dir)

cProfile slows Python code (not the system calls) by ~1.5-2x, so the "rest" row is an upper
bound; the other rows are time spent inside one system call each.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = {
    "fork/exec (_posixsubprocess.fork_exec)": ("fork_exec",),
    "audit sync (fdatasync, fsync)": ("posix.fdatasync", "posix.fsync"),
    "waiting for the command (epoll)": ("'poll' of 'select.epoll'",),
}


def profile(tmp: Path, n: int) -> tuple[float, dict[str, float]]:
    from runner.cli import main

    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    code = main(
        ["--state-dir", str(tmp / f"state-{n}"), "run", str(tmp / f"bench-{n}.yaml"), "--quiet"]
    )
    prof.disable()
    total = time.perf_counter() - start
    assert code == 0, code
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    got = dict.fromkeys(ROWS, 0.0)
    for (_, _, func), (_, _, tottime, _, _) in stats.items():
        for label, names in ROWS.items():
            # a C function: "<built-in method …>"
            if func.startswith("<") and any(name in func for name in names):
                got[label] += tottime
    return total, got


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory(prefix="runbook-breakdown.") as d:
        tmp = Path(d)
        subprocess.run(
            [sys.executable, str(here / "gen.py"), d, "1", str(n)], check=True, capture_output=True
        )
        os.environ.setdefault("XDG_CACHE_HOME", str(tmp / "cache"))
        profile(tmp, 1)  # warm: imports, the schema cache
        t1, r1 = profile(tmp, 1)
        tn, rn = profile(tmp, n)
    per = (tn - t1) / (n - 1) * 1000
    print(f"per step (in-process, under cProfile): {per:.3f} ms")
    rest = per
    for label in ROWS:
        ms = (rn[label] - r1[label]) / (n - 1) * 1000
        rest -= ms
        print(f"  {label:42} {ms:6.3f} ms")
    print(f"  {'event handling (the rest)':42} {rest:6.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
