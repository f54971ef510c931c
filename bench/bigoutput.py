#!/usr/bin/env python3
"""A step that prints 1 GiB: the runner's peak RSS and throughput, locally and over SSH (the
helper, and one channel per command), against the same bytes piped to `cat >/dev/null`.

    .venv/bin/python bench/bigoutput.py [--mib 1024] [--only local|helper|channel]

The output is text lines (`yes` of a 70-byte line, cut to size), so the console's line-by-line
secret masking sees realistic input; the run is --quiet (what a CI job does), so the bytes are
digested (SHA-256, head, tail) and masked but not printed. Peak RSS is the runner's (wait4).
Baselines: locally `sh -c 'yes … | head -c N | cat >/dev/null'`; over SSH the OpenSSH client,
`ssh host 'yes … | head -c N' | cat >/dev/null`, on the same throwaway sshd (bench/fleet.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet import RUNBOOK, start_sshd, stop_sshd

LINE = "runbook big-output benchmark line, seventy bytes with the newline."


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall s, peak RSS MiB of the process itself, exit code)."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return time.monotonic() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--only", choices=("local", "helper", "channel"))
    a = ap.parse_args()
    size = a.mib << 20
    produce = f"yes '{LINE}' | head -c {size}"
    with tempfile.TemporaryDirectory(prefix="runbook-bigout.") as tmp:
        d = Path(tmp)
        sshd, port = start_sshd(d, ["127.0.0.1"])
        try:
            (d / "big-local.yaml").write_text(
                f'runbook: big-local\nsteps:\n  - id: big\n    run: "{produce}"\n'
            )
            (d / "big-ssh.yaml").write_text(
                f'runbook: big-ssh\ntargets: [fleet]\nsteps:\n  - id: big\n    run: "{produce}"\n'
            )
            ssh = [
                "ssh", "-i", str(d / "client_ed25519"), "-p", str(port),
                "-o", f"UserKnownHostsFile={d / 'known_hosts'}", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "root@127.0.0.1",
            ]  # fmt: skip
            cases = {
                "local": (
                    ["sh", "-c", f"{produce} | cat >/dev/null"],
                    "auto",
                    ["run", str(d / "big-local.yaml")],
                ),
                "helper": (
                    ["sh", "-c", f'{" ".join(ssh)} "{produce}" | cat >/dev/null'],
                    "auto",
                    ["run", str(d / "big-ssh.yaml"), "-i", str(d / "inv.yaml")],
                ),
                "channel": (
                    ["sh", "-c", f'{" ".join(ssh)} "{produce}" | cat >/dev/null'],
                    "off",
                    ["run", str(d / "big-ssh.yaml"), "-i", str(d / "inv.yaml")],
                ),
            }
            print(f"{a.mib} MiB of output, one run each, runner --quiet")
            for name, (base, helper, args) in cases.items():
                if a.only and name != a.only:
                    continue
                env = dict(os.environ, RUNBOOK_SSH_HELPER=helper, XDG_CACHE_HOME=str(d / "c"))
                argv = [str(RUNBOOK), "--state-dir", str(d / "state"), *args, "--quiet"]
                bw, _, bcode = timed(base)
                rw, rss, rcode = timed(argv, env)
                print(
                    f"  {name:8} runbook {rw:6.2f} s ({a.mib / rw:5.0f} MiB/s), peak RSS {rss:4.0f} MiB,"
                    f" exit {rcode} | baseline {bw:6.2f} s ({a.mib / bw:5.0f} MiB/s), exit {bcode}"
                    f" | ratio {rw / bw:.2f}"
                )
        finally:
            stop_sshd(sshd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
