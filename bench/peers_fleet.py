#!/usr/bin/env python3
"""runbook, Fabric and pyinfra on N hosts (default 200) of one test sshd (bench/fleet.py's),
S `echo` steps each, one run per tool, interleaved: wall time and peak RSS of the tool's process.

    bash /work/shared/peer-bench/peers.sh            # the peers, in /tmp/peers-venv (PEERS_VENV)
    .venv/bin/python bench/peers_fleet.py [--hosts 200] [--steps 5] [--rounds 1]

Each tool runs every host at once: runbook with --forks N, Fabric a ThreadingGroup of N
connections (one `run` per step, hosts in lock-step, as peer-bench's W3), pyinfra its default
(all hosts in parallel, one `server.shell` operation per step). Same keys, same known_hosts
(unknown keys refused by all three).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bigoutput import timed
from fleet import RUNBOOK, addresses, start_sshd, stop_sshd

VENV = Path(os.environ.get("PEERS_VENV", "/tmp/peers-venv"))

FABRIC = """
import sys
from fabric import Connection, ThreadingGroup
from paramiko import RejectPolicy
hosts, port, key, known, steps = sys.argv[1].split(","), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
def connect(h):
    c = Connection(h, user="root", port=port, connect_kwargs={"key_filename": key, "look_for_keys": False, "allow_agent": False})
    c.client.load_host_keys(known)
    c.client.set_missing_host_key_policy(RejectPolicy())
    return c
group = ThreadingGroup.from_connections([connect(h) for h in hosts])
try:
    for i in range(1, steps + 1):
        group.run(f"echo step-{i}", hide=True)
finally:
    group.close()
"""

PYINFRA_DEPLOY = """
from pyinfra import host
from pyinfra.operations import server
for i in range(1, int(host.data.get("steps")) + 1):
    server.shell(name=f"step-{i}", commands=[f"echo step-{i}"])
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=200)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="runbook-peers-fleet.") as tmp:
        d = Path(tmp)
        hosts = addresses(a.hosts)
        sshd, port = start_sshd(d, hosts)
        try:
            lines = ["runbook: fleet", "targets: [fleet]", "steps:"]
            for i in range(1, a.steps + 1):
                lines += [f"  - id: step-{i}", f"    run: echo step-{i}"]
            (d / "fleet.yaml").write_text("\n".join(lines) + "\n")
            (d / "fab.py").write_text(FABRIC)
            (d / "deploy.py").write_text(PYINFRA_DEPLOY)
            ssh = {
                "ssh_port": port,
                "ssh_user": "root",
                "ssh_key": str(d / "client_ed25519"),
                "ssh_known_hosts_file": str(d / "known_hosts"),
                "ssh_strict_host_key_checking": "yes",
                "ssh_allow_agent": False,
                "ssh_look_for_keys": False,
            }
            (d / "inventory.py").write_text(
                f"fleet = [(h, {json.dumps(ssh)}) for h in {json.dumps(hosts)}]\n".replace(
                    "false", "False"
                )
            )
            tools = {
                "runbook": [
                    str(RUNBOOK), "--state-dir", str(d / "state"), "run", str(d / "fleet.yaml"),
                    "-i", str(d / "inv.yaml"), "--forks", str(a.hosts), "--quiet",
                ],
                "fabric": [
                    str(VENV / "bin" / "python"), str(d / "fab.py"), ",".join(hosts), str(port),
                    str(d / "client_ed25519"), str(d / "known_hosts"), str(a.steps),
                ],
                "pyinfra": [
                    str(VENV / "bin" / "pyinfra"), "-y", "--data", f"steps={a.steps}",
                    "--parallel", str(a.hosts), str(d / "inventory.py"), str(d / "deploy.py"),
                ],
            }  # fmt: skip
            env = dict(os.environ, XDG_CACHE_HOME=str(d / "cache"))
            print(f"{a.hosts} hosts x {a.steps} steps, every host at once")
            for r in range(a.rounds):
                for name, argv in tools.items():
                    wall, rss, code = timed(argv, env)
                    print(
                        f"  round {r + 1} {name:8} wall {wall:6.1f} s  peak RSS {rss:5.0f} MiB  exit {code}"
                    )
        finally:
            stop_sshd(sshd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
