#!/usr/bin/env python3
"""Does a command get slower as the state dir's history grows?

    .venv/bin/python bench/history.py [-n RUNS] [--entries 20000]

Times a one-step local `runbook run`, then `checklist status daily` (the repository's
checklists/), against a fresh state dir (A) and against one whose ledger already holds ENTRIES
entries (B), alternately, in fresh processes; prints the medians and the paired ratio B/A. Every run adds two ledger entries (opened, closed), so 20,000 entries is
10,000 runs: a team's year or two. The entries are chained as the runner chains them; they name
no real run journal (no command here verifies them).
Times are whole-process wall clock and CPU (peer-bench's compare.run_once, found via PEER_BENCH).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, os.environ.get("PEER_BENCH", "/work/shared/peer-bench"))
from compare import run_once

from runner.audit.journal import GENESIS, hashed_line

RUNBOOK = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "runbook"


def ledger(entries: int) -> bytes:
    """`entries` ledger entries, opened and closed by turns, hash-chained."""
    out, prev = [], GENESIS
    for seq in range(1, entries + 1):
        run = f"20261129T000000Z-job-{seq // 2:06x}"
        record = {
            "event": "run.opened" if seq % 2 else "run.closed",
            "run": run,
            "records": 40,
            "last_hash": prev,
            "ledger_prev": prev,
            "seq": seq,
            "ts": "2026-11-29T00:00:00.000000Z",
            "run_id": "ledger",
            "actor": {"user": "ops", "host": "bastion"},
            "prev": prev,
        }
        out.append(hashed_line(record) + b"\n")
        prev = record["hash"]
    return b"".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=11)
    ap.add_argument("--entries", type=int, default=20_000)
    a = ap.parse_args()
    os.chdir(Path(__file__).resolve().parent.parent)  # the repository: its checklists/
    with tempfile.TemporaryDirectory(prefix="runbook-history.") as tmp:
        d = Path(tmp)
        (d / "one.yaml").write_text("runbook: one\nsteps:\n  - id: a\n    run: 'true'\n")
        for name in ("fresh", "long"):
            (d / name).mkdir(mode=0o700)
        (d / "long" / "ledger.jsonl").write_bytes(ledger(a.entries))
        os.environ["XDG_CACHE_HOME"] = str(d / "cache")

        commands = {
            "one-step local run": ["run", str(d / "one.yaml")],
            "checklist status daily": ["checklist", "status", "daily"],
        }
        for state in ("fresh", "long"):
            run_once([str(RUNBOOK), "--state-dir", str(d / state), "checklist", "start", "daily"])
        for label, command in commands.items():
            if paired(label, d, command, a.n) != 0:
                return 1
        size = (d / "long" / "ledger.jsonl").stat().st_size
    print(f"B's ledger: {a.entries} entries ({size >> 20} MiB)")
    return 0


def paired(label: str, d: Path, command: list[str], n: int) -> int:
    """`runbook COMMAND` against the fresh (A) and the long (B) state dir, alternately."""

    def argv(state: str) -> list[str]:
        return [str(RUNBOOK), "--state-dir", str(d / state), *command]

    for state in ("fresh", "long"):  # warm-up (and the start-up cache)
        run_once(argv(state))
    got: dict[str, list[dict[str, float]]] = {"fresh": [], "long": []}
    for _ in range(n):
        for state in ("fresh", "long"):
            result = run_once(argv(state))
            if result["rc"] != 0:
                print(f"{label}, {state}: exit {result['rc']}", file=sys.stderr)
                return 1
            got[state].append(result)
    print(f"{label}, n={n}")
    for metric in ("wall", "cpu"):
        fresh = statistics.median(r[metric] for r in got["fresh"])
        long_ = statistics.median(r[metric] for r in got["long"])
        ratios = sorted(
            b[metric] / f[metric] for f, b in zip(got["fresh"], got["long"], strict=True)
        )
        print(
            f"  {metric:4}: A fresh {fresh:.3f} s, B long ledger {long_:.3f} s, "
            f"B/A median {statistics.median(ratios):.2f} (min {ratios[0]:.2f}, max {ratios[-1]:.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
