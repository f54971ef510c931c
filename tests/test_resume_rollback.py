"""`resume` and `resolve` of a run that stopped inside its rollback (docs/lifecycle.md,
docs/resilience.md): they finish that rollback, on the hosts it covered and no others.

resume, resolve and rollback go through `runner.cli.main`. The multi-host runs go to the real
sshd of sshd_fixture on loopback hosts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import run_events, write_runbook
from sshd_fixture import SSHServer

from runner.cli import main

# h2 fails; its undo fails until a person creates `fixed`. By the default policy
# (rollback-failed) h1 and h3, which succeeded, keep their change.
DEPLOY = """
runbook: deploy
params: {out: {type: string, required: true}}
targets: all
steps:
  - id: deploy
    run: echo deployed > {{ out }}/{{ host }}.deployed; test {{ host }} != h2
    rollback:
      - run: test -e {{ out }}/fixed && rm {{ out }}/{{ host }}.deployed
"""


def deploy_fails_on_h2(workdir: Path, sshd: SSHServer) -> tuple[str, Path]:
    """A three-host run that ended rollback-failed: h2's undo failed, h1 and h3 kept theirs."""
    out = workdir / "out"
    out.mkdir()
    inv = sshd.write_inventory(workdir / "inv.yaml", hosts=3)
    data = yaml.safe_load(inv.read_text())
    data["groups"] = {"all": list(data["hosts"])}
    inv.write_text(yaml.safe_dump(data))
    write_runbook(workdir, "deploy", DEPLOY)
    assert main(["run", "deploy", "-i", str(inv), "-p", f"out={out}"]) == 3
    records = run_events(workdir / "state")
    assert records[-1]["outcome"] == "rollback-failed"
    assert [r["host"] for r in records if r["event"] == "rollback.begin"] == ["h2"]
    return records[0]["run_id"], out


def deployed(out: Path) -> list[str]:
    return sorted(p.name.split(".")[0] for p in out.glob("*.deployed"))


@pytest.mark.ssh
def test_resume_of_a_failed_rollback_undoes_only_the_hosts_it_covered(
    workdir: Path, sshd: SSHServer
) -> None:
    """Was: resume undid h1 and h3 too, which the policy had kept (data loss)."""
    rid, out = deploy_fails_on_h2(workdir, sshd)
    (out / "fixed").touch()
    assert main(["resume", rid]) == 1  # h2's undo done: the failed host is rolled back
    assert deployed(out) == ["h1", "h3"]
    resumed = next(r for r in run_events(workdir / "state") if r["event"] == "run.resumed")
    assert resumed["rollback"] == {"h2": ["deploy"]}
    assert main(["resume", rid]) == 2  # nothing left to resume
    assert main(["audit", "verify"]) == 0


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
