"""Benchmark: `runbook audit verify` over one run of N records (default 100,000).

    .venv/bin/python bench/audit_verify.py [N]

Writes a realistic chained log (step records with output digests) into a temp state dir with the
real Journal, then times a fresh `runbook audit verify` process. Target: 100,000 records < 2 s.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runner.audit.journal import GENESIS, canonical, record_hash

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000

with tempfile.TemporaryDirectory() as tmp:
    state = Path(tmp)
    runs = state / "runs"
    runs.mkdir()
    run_id = "20261124T000000Z-bench-000000"
    prev = GENESIS
    out = bytearray()
    for i in range(1, N + 1):
        rec = {
            "seq": i,
            "ts": "2026-11-24T00:00:00.000000Z",
            "run_id": run_id,
            "event": "step.finished",
            "actor": {"user": "root", "host": "bench"},
            "prev": prev,
            "host": "local",
            "step": f"step-{i}",
            "command": f"echo step-{i}",
            "exit": 0,
            "ok": True,
            "duration": 0.001,
            "stdout": {"bytes": 12, "sha256": "0" * 64, "head": f"step-{i}\n"},
            "stderr": {"bytes": 0, "sha256": "0" * 64, "head": ""},
        }
        rec["hash"] = record_hash(rec)
        prev = rec["hash"]
        out += canonical(rec) + b"\n"
    (runs / f"{run_id}.jsonl").write_bytes(bytes(out))
    size = len(out) / 1e6
    times = []
    for _ in range(3):
        t = time.monotonic()
        r = subprocess.run(
            [sys.executable, "-m", "runner", "--state-dir", tmp, "audit", "verify"],
            capture_output=True,
            text=True,
            check=False,
        )
        times.append(time.monotonic() - t)
        assert r.returncode == 0, r.stdout + r.stderr
    print(
        f"{N} records ({size:.1f} MB): verify {min(times):.2f} s best of 3, median {sorted(times)[1]:.2f} s (target < 2 s)"
    )
