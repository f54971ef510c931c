#!/usr/bin/env python3
"""Many hosts over SSH: one test sshd answering on 127.0.x.y, N hosts x S `echo` steps.

    .venv/bin/python bench/fleet.py [--hosts 1000] [--steps 5] [--forks 100] [--helper off]

Starts a private sshd (a temp dir, a free port, key auth, logins only from loopback, listening
on 0.0.0.0 because one sshd holds at most 16 listen addresses: every 127.0.x.y reaches it),
writes an inventory of N hosts 127.0.x.y and a runbook of S steps, runs `runbook run --forks F`
once, and reports: wall time, the runner's peak RSS (wait4), the most TCP connections to the
sshd seen at once (its socket fds to the sshd, sampled every 20 ms), and `runbook audit verify`.
Everything is removed afterwards. Not part of `make test` (minutes of CPU; see bench/README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNBOOK = REPO / ".venv" / "bin" / "runbook"
SSHD_CONFIG = """\
Port {port}
ListenAddress 0.0.0.0
HostKey {d}/host_ed25519
PidFile none
AuthorizedKeysFile {d}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
AllowUsers *@127.0.0.0/8
MaxStartups 2000:30:4000
MaxSessions 200
SetEnv SHLVL=1
LogLevel ERROR
"""


def addresses(n: int) -> list[str]:
    out = []
    for i in range(n):
        x, y = divmod(i, 254)
        out.append(f"127.0.{x}.{y + 1}")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def connections(pid: int, port: int) -> int:
    """TCP sockets to the sshd that the runner (pid) holds open: its socket fds, matched by
    inode against /proc/net/tcp entries whose remote port is the sshd's."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    except OSError:
        return 0
    hexport = f":{port:04X}"
    found = set()  # by inode: a table read while it changes can list a socket twice
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2].endswith(hexport) and fields[9] in inodes:
            found.add(fields[9])
    return len(found)


def start_sshd(d: Path, hosts: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    """A throwaway sshd for `hosts` (127.0.x.y), its keys, known_hosts and d/inv.yaml (group
    `fleet` = every host); returns the listener and its port once it accepts connections."""
    for name in ("host_ed25519", "client_ed25519"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True
        )
    (d / "authorized_keys").write_text((d / "client_ed25519.pub").read_text())
    port = free_port()
    (d / "sshd_config").write_text(SSHD_CONFIG.format(port=port, d=d))
    hostkey = " ".join((d / "host_ed25519.pub").read_text().split()[:2])
    (d / "known_hosts").write_text("".join(f"[{h}]:{port} {hostkey}\n" for h in hosts))
    inv = {
        "ssh": {
            "key": str(d / "client_ed25519"),
            "known_hosts": str(d / "known_hosts"),
            "user": "root",
            "port": port,
            "connect_timeout": "60s",
        },
        "hosts": {f"h{i}": {"address": h} for i, h in enumerate(hosts)},
        "groups": {"fleet": [f"h{i}" for i in range(len(hosts))]},
    }
    (d / "inv.yaml").write_text(json.dumps(inv))
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    sshd = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-f", str(d / "sshd_config"), "-E", str(d / "sshd.log")]
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.02)
    return sshd, port


def stop_sshd(sshd: subprocess.Popen[bytes]) -> None:
    # the listener's per-connection children live in sessions of their own
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == sshd.pid:
                os.kill(int(stat.parent.name), 9)
        except (OSError, ValueError, IndexError):
            continue
    sshd.kill()
    sshd.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--forks", type=int, default=100)
    ap.add_argument("--helper", default="auto", help="RUNBOOK_SSH_HELPER: auto or off")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="runbook-fleet.") as tmp:
        d = Path(tmp)
        hosts = addresses(a.hosts)
        sshd, port = start_sshd(d, hosts)
        lines = ["runbook: fleet", "targets: [fleet]", "steps:"]
        for i in range(1, a.steps + 1):
            lines += [f"  - id: step-{i}", f"    run: echo step-{i}"]
        (d / "fleet.yaml").write_text("\n".join(lines) + "\n")
        try:
            peak = [0]
            done = threading.Event()

            env = dict(os.environ, RUNBOOK_SSH_HELPER=a.helper, XDG_CACHE_HOME=str(d / "cache"))
            argv = [
                str(RUNBOOK),
                "--state-dir",
                str(d / "state"),
                "run",
                str(d / "fleet.yaml"),
                "-i",
                str(d / "inv.yaml"),
                "--forks",
                str(a.forks),
                "--quiet",
            ]
            start = time.monotonic()
            proc = subprocess.Popen(
                argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], connections(proc.pid, port))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            err = proc.stderr.read() if proc.stderr else b""
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.monotonic() - start
            done.set()
            sampler.join()
            code = os.waitstatus_to_exitcode(status)
            verify = subprocess.run(
                [str(RUNBOOK), "--state-dir", str(d / "state"), "audit", "verify"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            (log,) = (d / "state" / "runs").glob("*.jsonl")
            records = [json.loads(x) for x in log.read_text().splitlines()]
            ok_steps = sum(1 for r in records if r["event"] == "step.finished" and r["ok"])
        finally:
            stop_sshd(sshd)
        print(f"hosts {a.hosts}, steps {a.steps}, --forks {a.forks}, helper {a.helper}")
        print(f"  exit {code}; steps ok {ok_steps} of {a.hosts * a.steps}")
        print(
            f"  wall {wall:.1f} s; runner peak RSS {usage.ru_maxrss / 1024:.0f} MiB; "
            f"CPU {usage.ru_utime + usage.ru_stime:.1f} s"
        )
        print(f"  most connections the runner held open at once: {peak[0]} (limit {a.forks})")
        print(
            f"  audit verify: exit {verify.returncode} ({verify.stdout.strip().splitlines()[-1] if verify.stdout.strip() else verify.stderr.strip()[-200:]})"
        )
        if code != 0:
            print(err.decode(errors="replace")[-2000:], file=sys.stderr)
        return 0 if code == 0 and verify.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
