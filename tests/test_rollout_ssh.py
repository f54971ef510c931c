"""Multi-host runs and rollouts over SSH against the real OpenSSH server of sshd_fixture.

Every host is a loopback address of the same machine, so a step's files land in one directory:
they are named after `{{ host }}` to tell the hosts apart.
"""

from __future__ import annotations

import json
import shutil
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest
import yaml
from conftest import REPO, run_events, write_runbook
from demo_target import Demo
from sshd_fixture import SSHServer

from runner.cli import main

pytestmark = pytest.mark.ssh


def finished(state: Path) -> dict[str, Any]:
    last = run_events(state)[-1]
    assert last["event"] == "run.finished"
    return last


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fingerprint(public_line: str) -> str:
    return str(asyncssh.import_public_key(public_line).get_fingerprint("sha256"))


def hosts_with(directory: Path, suffix: str) -> list[str]:
    names = [p.name[: -len(suffix)] for p in directory.glob(f"*{suffix}")]
    return sorted(names, key=lambda n: int(n.lstrip("h")))


ROLLOUT = """
runbook: roll
params: {{fail: {{type: string, default: ""}}, out: {{type: string, required: true}}}}
targets: all
rollout: {rollout}
steps:
  - id: change
    run: echo changed > {{{{ out }}}}/{{{{ host }}}}.changed
    rollback:
      - run: echo undone > {{{{ out }}}}/{{{{ host }}}}.rolledback
  - id: check
    run: |
      fail={{{{ fail }}}}; host={{{{ host }}}}
      case " $fail " in *" $host "*) echo broken >&2; exit 1 ;; esac
"""


def rollout_run(
    workdir: Path, sshd: SSHServer, rollout: str, fail: str, hosts: int = 10, *extra: str
) -> tuple[int, Path]:
    out = workdir / "out"
    out.mkdir()
    inv = sshd.write_inventory(workdir / "inv.yaml", hosts=hosts)
    inv_data = yaml.safe_load(inv.read_text())
    inv_data["groups"] = {"all": list(inv_data["hosts"])}
    inv.write_text(yaml.safe_dump(inv_data))
    write_runbook(workdir, "roll", ROLLOUT.format(rollout=rollout))
    code = main(["run", "roll", "-i", str(inv), "-p", f"fail={fail}", "-p", f"out={out}", *extra])
    return code, out


# --- the seed's runbook over SSH ---------------------------------------------------------------


def test_demo_health_check_over_ssh(workdir: Path, demo_ssh: Demo) -> None:
    """health-check.yaml on the demo target through sshd, as host app1."""
    rb = str(REPO / "runbooks/health-check.yaml")
    assert main(["run", rb, "-i", str(demo_ssh.inv)]) == 0
    (demo_ssh.app / ".health_override").write_text("unhealthy\n")
    assert main(["run", rb, "-i", str(demo_ssh.inv), "-p", "mode=quick"]) == 1
    runs = [
        [json.loads(line) for line in log.read_text().splitlines()]
        for log in (workdir / "state" / "runs").glob("*.jsonl")
    ]
    (good,) = [r for r in runs if r[-1]["exit_code"] == 0]
    ran = {e["step"] for e in good if e["event"] == "step.finished" and e["ok"]}
    assert {"db-integrity", "health-endpoint", "service-status"} <= ran
    assert {e["host"] for e in good if e["event"] == "step.finished"} == {"app1"}
    assert main(["audit", "verify"]) == 0


# --- rollout and max_failures ------------------------------------------------------------------


def test_failure_in_batch_2_stops_the_rollout_and_rolls_back_the_host(
    workdir: Path, sshd: SSHServer
) -> None:
    code, out = rollout_run(workdir, sshd, '{batch: [1, 3, "100%"], max_failures: 0}', "h3")
    assert code == 1
    assert hosts_with(out, ".changed") == ["h1", "h2", "h3", "h4"]  # batch 3 never started
    assert hosts_with(out, ".rolledback") == ["h3"]
    log = run_events(workdir / "state")
    batches = [e["hosts"] for e in log if e["event"] == "batch.started"]
    assert batches == [["h1"], ["h2", "h3", "h4"]]
    (stopped,) = [e for e in log if e["event"] == "rollout.stopped"]
    assert (stopped["batch"], stopped["failed"], stopped["hosts_not_started"]) == (2, 1, 6)
    last = finished(workdir / "state")
    # h1, h2 and h4 keep their change: the run is not rolled back, only h3 is (and resumable)
    assert last["outcome"] == "failed" and last["exit_code"] == 1
    [state] = [e for e in log if e["event"] == "run.state" and e["state"] == "failed"]
    assert state["reason"] == (
        "1 of 10 hosts failed: h3 (h3: step 'check': exit 1, expected 0); rolled back: h3; "
        "kept their change: h1, h2, h4; never started: h5, h6, h7, h8, h9, h10"
    )
    assert last["hosts"]["h3"]["ok"] is False and last["hosts"]["h3"]["rollback_ok"] is True
    assert "exit 1" in last["hosts"]["h3"]["reason"]
    assert set(last["hosts"]) == {"h1", "h2", "h3", "h4"}
    # every command is in the audit log, per host
    cmds = {(e["host"], e["step"]) for e in log if e["event"] == "step.finished"}
    assert ("h3", "check") in cmds and ("h1", "change") in cmds
    assert main(["audit", "verify"]) == 0


@pytest.mark.parametrize(
    ("max_failures", "fail", "changed"),
    [
        # max_failures: N means "stop when MORE than N hosts have failed" (in all batches so far)
        (1, "h3", ["h1", "h2", "h3", "h4", "h5", "h6"]),  # 1 failure is tolerated
        (1, "h1 h3", ["h1", "h2", "h3", "h4"]),  # the 2nd failure, in batch 2, stops it
        (1, "h1 h2", ["h1", "h2"]),  # 2 failures in batch 1: batch 2 never starts
        (0, "h6", ["h1", "h2", "h3", "h4", "h5", "h6"]),  # last batch: nothing left to stop
    ],
)
def test_max_failures_means_more_than_n(
    workdir: Path, sshd: SSHServer, max_failures: int, fail: str, changed: list[str]
) -> None:
    rollout = f"{{batch: 2, max_failures: {max_failures}}}"
    code, out = rollout_run(workdir, sshd, rollout, fail, 6)
    assert code == 1
    assert hosts_with(out, ".changed") == changed
    assert hosts_with(out, ".rolledback") == fail.split()  # failed hosts are always rolled back
    stopped = [e for e in run_events(workdir / "state") if e["event"] == "rollout.stopped"]
    assert bool(stopped) == (len(changed) < 6)  # nothing to stop after the last batch


def test_rollback_batch_undoes_every_host_of_the_failing_batch(
    workdir: Path, sshd: SSHServer
) -> None:
    rollout = "{batch: [1, 3, 2], max_failures: 0, on_batch_failure: rollback-batch}"
    code, out = rollout_run(workdir, sshd, rollout, "h3", 6)
    assert code == 1
    assert hosts_with(out, ".changed") == ["h1", "h2", "h3", "h4"]
    # h1 (batch 1, which passed) stays; all of batch 2 is undone, not just h3
    assert hosts_with(out, ".rolledback") == ["h2", "h3", "h4"]
    log = run_events(workdir / "state")
    (batch,) = [e for e in log if e["event"] == "rollback.batch"]
    assert batch["batch"] == 2 and sorted(batch["hosts"]) == ["h2", "h4"]
    last = finished(workdir / "state")
    assert last["outcome"] == "failed"  # h1 keeps its change: not everything was undone
    assert last["hosts"]["h2"] == {
        "ok": True,
        "reason": "rolled back with batch 2",
        "rollback_ok": True,
    }
    assert last["hosts"]["h1"]["rollback_ok"] is None


def test_rollback_batch_schema_rejects_unknown_value(workdir: Path, sshd: SSHServer) -> None:
    code, _ = rollout_run(workdir, sshd, "{batch: 1, on_batch_failure: everything}", "", 2)
    assert code == 2


# --- unreachable hosts -------------------------------------------------------------------------


def unreachable_inventory(workdir: Path, sshd: SSHServer) -> Path:
    """h1, bad, h2, h3: `bad` refuses connections (nothing listens on its port)."""
    inv = sshd.write_inventory(workdir / "inv.yaml", hosts=3)
    data = yaml.safe_load(inv.read_text())
    hosts = data["hosts"]
    data["hosts"] = {
        "h1": hosts["h1"],
        "bad": {"address": "127.0.0.1", "port": free_port(), "user": sshd.user},
        "h2": hosts["h2"],
        "h3": hosts["h3"],
    }
    data["groups"] = {"all": list(data["hosts"])}
    inv.write_text(yaml.safe_dump(data, sort_keys=False))
    return inv


UNREACHABLE = """
runbook: unreach
params: {{out: {{type: string, required: true}}}}
targets: all
rollout: {{batch: 1, max_failures: {max_failures}}}
{preconditions}
steps:
  - id: change
    run: echo changed > {{{{ out }}}}/{{{{ host }}}}.changed
    rollback:
      - run: echo undone > {{{{ out }}}}/{{{{ host }}}}.rolledback
"""


@pytest.mark.parametrize("preconditions", [False, True])
@pytest.mark.parametrize("max_failures", [0, 1])
def test_an_unreachable_host_counts_as_failed(
    workdir: Path, sshd: SSHServer, max_failures: int, preconditions: bool
) -> None:
    out = workdir / "out"
    out.mkdir()
    inv = unreachable_inventory(workdir, sshd)
    pre = "preconditions: [{name: reachable, run: 'true'}]" if preconditions else ""
    write_runbook(
        workdir, "unreach", UNREACHABLE.format(max_failures=max_failures, preconditions=pre)
    )
    code = main(["run", "unreach", "-i", str(inv), "-p", f"out={out}"])
    assert code == 1  # not 3: nothing ran on `bad`, so there is nothing it failed to undo
    last = finished(workdir / "state")
    assert last["hosts"]["bad"]["ok"] is False
    assert "connection refused" in last["hosts"]["bad"]["reason"]
    assert "\n" not in last["hosts"]["bad"]["reason"]
    assert not (out / "bad.rolledback").exists()
    if max_failures == 1:  # tolerated: the others all run
        assert hosts_with(out, ".changed") == ["h1", "h2", "h3"]
    elif preconditions:  # before anything changed: the run is aborted
        assert hosts_with(out, ".changed") == [] and last["outcome"] == "aborted"
    else:  # failed in batch 2: batches 3 and 4 never start
        assert hosts_with(out, ".changed") == ["h1"]
        assert [e for e in run_events(workdir / "state") if e["event"] == "rollout.stopped"]


# --- host keys, client keys, a dying server ----------------------------------------------------

ONE_STEP = """
runbook: one
targets: h1
steps:
  - {id: s, run: echo hi}
"""


def test_changed_host_key_is_refused(workdir: Path, sshd: SSHServer) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    other_line = " ".join(other.export_public_key().decode().split()[:2])
    known = workdir / "known_hosts"
    known.write_text(f"[{sshd.addresses[0]}]:{sshd.port} {other_line}\n")
    inv = sshd.write_inventory(workdir / "inv.yaml", hosts=1, known_hosts=str(known))
    write_runbook(workdir, "one", ONE_STEP)
    assert main(["run", "one", "-i", str(inv)]) == 1
    reason = finished(workdir / "state")["hosts"]["h1"]["reason"]
    assert "HOST KEY CHANGED" in reason and fingerprint(sshd.host_key_pub) in reason
    assert "\n" not in reason
    assert known.read_text().count("\n") == 1  # never silently accepted
    # not even with --accept-new-host-keys: that is for unknown hosts only
    assert main(["run", "one", "-i", str(inv), "--accept-new-host-keys"]) == 1
    assert known.read_text().count("\n") == 1


def test_wrong_client_key_is_an_auth_failure(workdir: Path, sshd: SSHServer) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = workdir / "wrong_key"
    key.write_private_key(str(path))
    path.chmod(0o600)
    inv = sshd.write_inventory(workdir / "inv.yaml", hosts=1, key=str(path))
    write_runbook(workdir, "one", ONE_STEP)
    assert main(["run", "one", "-i", str(inv)]) == 1
    (outcome,) = [e for e in run_events(workdir / "state") if e["event"] == "step.outcome"]
    assert outcome["status"] == "failed" and outcome["host"] == "h1"
    assert "authentication failed" in outcome["reason"] and "\n" not in outcome["reason"]


def test_sshd_killed_mid_step_fails_the_step_without_hanging(
    workdir: Path, make_sshd: Callable[..., SSHServer]
) -> None:
    server = make_sshd()
    inv = server.write_inventory(workdir / "inv.yaml")
    marker = workdir / "started"
    write_runbook(
        workdir,
        "long",
        f"""
runbook: long
targets: h1
steps:
  - {{id: s, run: "touch {marker}; sleep 60", timeout: 30s}}
""",
    )

    def kill_when_started() -> None:
        deadline = time.monotonic() + 20
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        server.stop()

    killer = threading.Thread(target=kill_when_started)
    killer.start()
    start = time.monotonic()
    try:
        assert main(["run", "long", "-i", str(inv)]) == 1
    finally:
        killer.join()
    assert time.monotonic() - start < 15  # well within the step's 30 s timeout
    (outcome,) = [e for e in run_events(workdir / "state") if e["event"] == "step.outcome"]
    assert outcome["status"] == "failed" and "connection lost" in outcome["reason"]
    assert "\n" not in outcome["reason"]


# --- --forks -----------------------------------------------------------------------------------


def established_to(port: int) -> int:
    """ESTABLISHED TCP sockets whose remote port is `port`: our client connections to sshd.

    Asked of the kernel over sock_diag netlink (what `ss` does), which walks its socket table in
    one system call. /proc/net/tcp is not a snapshot: it comes one page per read(), and between
    two reads the run (in this process, sharing the GIL) could close one connection and open the
    next, so a sample counted both (a phantom 4th connection under `--forks 3`, seen when both
    cores were busy).
    """
    nlmsg_done, nlmsg_error, sock_diag_by_family = 3, 2, 20
    established = 1 << 1  # TCP_ESTABLISHED = 1
    # struct inet_diag_req_v2: family, protocol, ext, pad, states, then a zeroed inet_diag_sockid
    request = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, established)
    request += bytes(48)
    header = struct.pack("=IHHII", 16 + len(request), sock_diag_by_family, 0x1 | 0x300, 1, 0)
    count = 0
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4) as nl:  # NETLINK_SOCK_DIAG
        nl.sendall(header + request)
        while True:
            data = nl.recv(1 << 20)
            offset = 0
            while offset < len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind == nlmsg_done:
                    return count
                if kind == nlmsg_error:
                    raise OSError("sock_diag request refused")
                # struct inet_diag_msg: family, state, timer, retrans, then sport, dport (be16)
                (dport,) = struct.unpack_from("!H", data, offset + 16 + 6)
                count += dport == port
                offset += (length + 3) & ~3


def test_concurrency_never_exceeds_forks(
    workdir: Path, make_sshd: Callable[..., SSHServer]
) -> None:
    server = make_sshd(10)  # private: its connections are ours alone to count
    inv = server.write_inventory(workdir / "inv.yaml")
    data = yaml.safe_load(inv.read_text())
    data["groups"] = {"all": list(data["hosts"])}
    inv.write_text(yaml.safe_dump(data))
    times = workdir / "times"
    write_runbook(
        workdir,
        "spans",
        f"""
runbook: spans
targets: all
preconditions: [{{name: reachable, run: "true"}}]
steps:
  - id: span
    run: |
      echo {{{{ host }}}} start "$(date +%s.%N)" >> {times}
      sleep 0.3
      echo {{{{ host }}}} end "$(date +%s.%N)" >> {times}
""",
    )
    most_connections = 0
    stop = threading.Event()

    def client_connections() -> int:
        return established_to(server.port)

    def sample() -> None:
        nonlocal most_connections
        while not stop.is_set():
            most_connections = max(most_connections, client_connections())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        assert main(["run", "spans", "-i", str(inv), "--forks", "3"]) == 0
    finally:
        stop.set()
        sampler.join()
    points = []
    for line in times.read_text().splitlines():
        _, what, when = line.split()
        points.append((float(when), 1 if what == "start" else -1))
    assert len(points) == 20
    running = overlap = 0
    for _, delta in sorted(points, key=lambda p: (p[0], p[1])):  # an end before a start at a tie
        running += delta
        overlap = max(overlap, running)
    assert overlap == 3  # work on hosts never exceeds --forks
    # open connections: the pool closes an idle one before a new host starts
    assert 1 <= most_connections <= 3


# --- Ansible inventories -----------------------------------------------------------------------


def test_ansible_yaml_inventory(
    workdir: Path, sshd: SSHServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no runner-specific SSH settings in an Ansible inventory: known_hosts comes from ~/.ssh
    home = workdir / "home"
    (home / ".ssh").mkdir(parents=True)
    shutil.copy(sshd.known_hosts, home / ".ssh" / "known_hosts")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    out = workdir / "out"
    out.mkdir()
    inv = workdir / "hosts.yml"
    inv.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "vars": {
                        "ansible_user": sshd.user,
                        "ansible_port": sshd.port,
                        "ansible_ssh_private_key_file": str(sshd.client_key),
                        "greeting": "hello",
                    },
                    "children": {
                        "web": {
                            "vars": {"role": "web"},
                            "hosts": {
                                "web1": {"ansible_host": "127.0.0.2"},
                                "web2": {"ansible_host": "127.0.0.3", "ansible_port": sshd.port},
                            },
                            "children": {
                                "canary": {
                                    "vars": {"role": "canary"},
                                    "hosts": {"web1": None},
                                }
                            },
                        },
                        "db": {"hosts": {"db1": {"ansible_host": "127.0.0.4"}}},
                    },
                }
            }
        )
    )
    write_runbook(
        workdir,
        "hello",
        f"""
runbook: hello
targets: web
steps:
  - id: s
    run: echo {{{{ greeting }}}} {{{{ role }}}} "$SSH_CONNECTION" > {out}/{{{{ host }}}}
""",
    )
    assert main(["run", "hello", "-i", str(inv)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["web1", "web2"]
    web1 = (out / "web1").read_text().split()
    web2 = (out / "web2").read_text().split()
    assert web1[:2] == ["hello", "canary"]  # the child group's vars win over its parent's
    assert web2[:2] == ["hello", "web"]
    assert web1[4:6] == ["127.0.0.2", str(sshd.port)]  # SSH_CONNECTION: server address, port
    assert web2[4:6] == ["127.0.0.3", str(sshd.port)]
