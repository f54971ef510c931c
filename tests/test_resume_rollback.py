"""`resume` and `resolve` of a run that stopped inside its rollback (docs/lifecycle.md,
docs/resilience.md): they finish that rollback, on the hosts it covered and no others; an undo
whose outcome is unknown (cut short by a crash) is asked about first, as a step's is; and a run
that is still live is refused as locked, naming its holder.

The runs are real processes (killed with real signals); resume, resolve and rollback go through
`runner.cli.main`. The multi-host runs go to the real sshd of sshd_fixture on loopback hosts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import run_events, write_runbook
from sshd_fixture import SSHServer
from test_interrupts import spawn, wait_for_file

from runner.cli import main

# h2 fails; its undo fails until a person creates `fixed`. By the default policy
# (rollback-failed) h1 and h3, which succeeded, keep their change.
DEPLOY = """
runbook: deploy
params: {{out: {{type: string, required: true}}}}
targets: all
{rollout}
steps:
  - id: deploy
    run: echo deployed > {{{{ out }}}}/{{{{ host }}}}.deployed; test {{{{ host }}}} != h2
    rollback:
      - run: test -e {{{{ out }}}}/fixed && rm {{{{ out }}}}/{{{{ host }}}}.deployed
"""


def deploy_fails_on_h2(workdir: Path, sshd: SSHServer, rollout: str = "") -> tuple[str, Path]:
    """A three-host run that ended rollback-failed: h2's undo failed (by default, h1 and h3 kept
    their change)."""
    out = workdir / "out"
    out.mkdir()
    inv = sshd.write_inventory(workdir / "inv.yaml", hosts=3)
    data = yaml.safe_load(inv.read_text())
    data["groups"] = {"all": list(data["hosts"])}
    inv.write_text(yaml.safe_dump(data))
    write_runbook(workdir, "deploy", DEPLOY.format(rollout=rollout))
    assert main(["run", "deploy", "-i", str(inv), "-p", f"out={out}"]) == 3
    records = run_events(workdir / "state")
    assert records[-1]["outcome"] == "rollback-failed"
    return records[0]["run_id"], out


def deployed(out: Path) -> list[str]:
    return sorted(p.name.split(".")[0] for p in out.glob("*.deployed"))


@pytest.mark.ssh
def test_resume_of_a_failed_rollback_undoes_only_the_hosts_it_covered(
    workdir: Path, sshd: SSHServer
) -> None:
    """Was: resume undid h1 and h3 too, which the policy had kept (data loss)."""
    rid, out = deploy_fails_on_h2(workdir, sshd)
    began = [r["host"] for r in run_events(workdir / "state") if r["event"] == "rollback.begin"]
    assert began == ["h2"]
    (out / "fixed").touch()
    assert main(["resume", rid]) == 1  # h2's undo done: the failed host is rolled back
    assert deployed(out) == ["h1", "h3"]
    resumed = next(r for r in run_events(workdir / "state") if r["event"] == "run.resumed")
    assert resumed["rollback"] == {"h2": ["deploy"]}
    assert main(["resume", rid]) == 2  # nothing left to resume
    assert main(["audit", "verify"]) == 0


@pytest.mark.ssh
def test_resume_of_a_failed_batch_rollback_keeps_the_earlier_batch(
    workdir: Path, sshd: SSHServer
) -> None:
    """rollback-batch: the failing batch (h2, h3) is the rollback's; h1, of a completed batch,
    is kept, by the run and by its resume."""
    rollout = "rollout: {batch: [1, 2], on_batch_failure: rollback-batch}"
    rid, out = deploy_fails_on_h2(workdir, sshd, rollout)
    assert deployed(out) == ["h1", "h2", "h3"]  # every undo failed: no `fixed` yet
    (out / "fixed").touch()
    assert main(["resume", rid]) == 1
    assert deployed(out) == ["h1"]


@pytest.mark.ssh
def test_resolving_the_failed_undo_closes_a_multi_host_run(
    workdir: Path, sshd: SSHServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: the run stayed rollback-failed, pointing at `runbook rollback`, which would undo the
    healthy hosts; a claim about a host the rollback never touched was accepted too."""
    rid, out = deploy_fails_on_h2(workdir, sshd)
    claim = ["resolve", rid, "--step", "deploy", "--by", "alice", "--reason", "cleaned by hand"]
    assert main([*claim, "--host", "h1"]) == 2  # h1 kept its change: nothing to undo there
    capsys.readouterr()
    assert main([*claim, "--host", "h2"]) == 0
    assert "resolved by alice (nothing left to undo)" in capsys.readouterr().out
    assert run_events(workdir / "state")[-1]["outcome"] == "resolved"
    assert deployed(out) == ["h1", "h2", "h3"]  # h2's by hand, says alice; nothing ran


@pytest.mark.ssh
def test_rollback_of_a_failed_rollback_still_undoes_every_host(
    workdir: Path, sshd: SSHServer
) -> None:
    """`runbook rollback RUN_ID` is a person asking to undo the whole run: every host."""
    rid, out = deploy_fails_on_h2(workdir, sshd)
    (out / "fixed").touch()
    assert main(["rollback", rid]) == 0
    assert deployed(out) == []


# b's undo logs that it ran, then waits until `go` exists (or the runner is killed)
SLOW_UNDO = """
runbook: slow-undo
steps:
  - id: a
    run: echo a >> trail
    rollback: [{run: echo undo-a >> trail}]
  - id: b
    run: echo $$ > pid; sleep 60
    rollback:
      - run: |
          echo undo-b >> trail
          if [ ! -e go ]; then echo $$ > rbpid; sleep 60; fi
"""


def _gone(group: int) -> None:
    """The killed runner's watcher ends its command's group (lifeline.py); make sure of it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def _killed_in_its_undo(workdir: Path) -> str:
    """A slow-undo run whose runner was SIGKILLed in the middle of b's undo: its id."""
    write_runbook(workdir, "slow-undo", SLOW_UNDO)
    proc = spawn(workdir, "run", "slow-undo")
    wait_for_file(workdir / "pid")
    proc.send_signal(signal.SIGINT)  # stop b; no terminal: the policy rolls back, b's undo first
    undo = wait_for_file(workdir / "rbpid")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=20)
    _gone(undo)
    return str(run_events(workdir / "state")[0]["run_id"])


def test_rollback_asks_about_an_undo_cut_short_too(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: `runbook rollback RUN_ID` ran the cut-short undo again at once, without a terminal
    and without --rerun-unknown, where `resume` asks (the same gate, docs/resilience.md)."""
    rid = _killed_in_its_undo(workdir)
    capsys.readouterr()
    assert main(["rollback", rid, "--yes"]) == 2
    err = capsys.readouterr().err
    assert "outcome unknown for b on local" in err and "rollback" in err
    assert (workdir / "trail").read_text().split() == ["a", "undo-b"]  # nothing ran again
    (workdir / "go").touch()
    assert main(["rollback", rid, "--yes", "--rerun-unknown"]) == 0  # asked for: done
    assert (workdir / "trail").read_text().split() == ["a", "undo-b", "undo-b", "undo-a"]


def test_a_crash_during_an_undo_leaves_its_outcome_unknown_to_resume(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: resume ran the cut-short undo again at once, without a terminal and without
    --rerun-unknown (the forward phase's gate was never reached in the rollback phase)."""
    write_runbook(workdir, "slow-undo", SLOW_UNDO)
    proc = spawn(workdir, "run", "slow-undo")
    wait_for_file(workdir / "pid")
    proc.send_signal(signal.SIGINT)  # stop b; no terminal: the policy rolls back, b's undo first
    undo = wait_for_file(workdir / "rbpid")
    proc.send_signal(signal.SIGKILL)  # the runner dies in the middle of b's undo
    proc.wait(timeout=20)
    _gone(undo)
    rid = run_events(workdir / "state")[0]["run_id"]
    capsys.readouterr()
    assert main(["resume", rid]) == 2
    err = capsys.readouterr().err
    assert "outcome unknown for b on local" in err and "--rerun-unknown" in err
    assert (workdir / "trail").read_text().split() == ["a", "undo-b"]  # nothing ran again
    (workdir / "go").touch()
    assert main(["resume", rid, "--rerun-unknown"]) == 1
    assert (workdir / "trail").read_text().split() == ["a", "undo-b", "undo-b", "undo-a"]
    resumed = next(r for r in run_events(workdir / "state") if r["event"] == "run.resumed")
    assert resumed["outcome_unknown"] == {"local": ["b"]}
    assert main(["audit", "verify"]) == 0


def test_resume_of_a_live_run_is_refused_as_locked_naming_its_holder(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: "outcome unknown … resume with --rerun-unknown" about the step running right now."""
    write_runbook(
        workdir,
        "live",
        """
runbook: live
steps:
  - id: migrate
    run: echo $$ > pid; while [ ! -e go ]; do sleep 0.05; done; echo migrate >> trail
""",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", "live"],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_file(workdir / "pid")
        rid = run_events(workdir / "state")[0]["run_id"]
        capsys.readouterr()
        assert main(["resume", rid]) == 2
        err = capsys.readouterr().err
        assert f"locked: run {rid}" in err and f"(pid {proc.pid})" in err, err
        assert "outcome unknown" not in err
    finally:
        (workdir / "go").touch()
        assert proc.wait(timeout=20) == 0
    # the live run went on untouched
    assert (workdir / "trail").read_text().split() == ["migrate"]
