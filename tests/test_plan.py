"""Saved plans: reviewed, approved, executed exactly, or refused when anything changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_runbook

from runner.cli import main

RUNBOOK = """
runbook: deploy
params:
  version: {type: string, default: "1.0"}
  token: {type: string, secret: true, required: true}
host_vars: {app_dir: Deployment root}
steps:
  - id: write
    run: echo {{ version }} > {{ app_dir }}/deployed
    verify:
      - run: grep -q {{ version }} {{ app_dir }}/deployed
    rollback:
      - run: rm -f {{ app_dir }}/deployed
  - id: auth
    run: test -n {{ token }}
"""


@pytest.fixture
def planned(workdir: Path) -> Path:
    write_runbook(workdir, "deploy", RUNBOOK)
    (workdir / "app").mkdir()
    (workdir / "inv.yaml").write_text(
        f"hosts: {{local: {{connection: local}}}}\nvars: {{app_dir: {workdir / 'app'}}}\n"
    )
    plan = workdir / "plan.json"
    assert (
        main(
            [
                "plan",
                "deploy",
                "-i",
                "inv.yaml",
                "-p",
                "version=2.0",
                "-p",
                "token=tok-s3cret",
                "-o",
                str(plan),
            ]
        )
        == 0
    )
    return plan


def test_saved_plan_executes_and_hides_the_secret(planned: Path, workdir: Path) -> None:
    text = planned.read_text()
    assert "tok-s3cret" not in text
    data = json.loads(text)
    assert data["params"]["version"] == "2.0" and len(data["params"]["token"]["secret_hmac"]) == 64
    steps = data["plan"]["hosts"]["local"]
    assert steps[0]["verify"][0]["run"].startswith("grep -q 2.0 ")
    assert main(["run", "--plan", str(planned), "-p", "token=tok-s3cret"]) == 0
    assert (workdir / "app" / "deployed").read_text().strip() == "2.0"
    (log,) = (workdir / "state" / "runs").glob("*.jsonl")
    started = json.loads(log.read_text().splitlines()[0])
    assert started["plan_hash"] == data["plan_hash"]


def test_a_different_secret_is_refused(
    planned: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--plan", str(planned), "-p", "token=other"]) == 2
    assert "param 'token' differs" in capsys.readouterr().err
    assert not (workdir / "app" / "deployed").exists()


def test_one_character_edit_of_the_runbook_is_refused(
    planned: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workdir / "runbooks" / "deploy.yaml"
    path.write_text(path.read_text().replace("test -n", "test  -n"))
    assert main(["run", "--plan", str(planned), "-p", "token=tok-s3cret"]) == 2
    assert "runbook file runbooks/deploy.yaml changed" in capsys.readouterr().err
    assert not (workdir / "state" / "runs").exists()  # (the state dir holds the plan key)


def test_a_changed_param_is_refused(planned: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--plan", str(planned), "-p", "token=tok-s3cret", "-p", "version=3.0"]) == 2
    assert "refusing -p version with --plan" in capsys.readouterr().err


def test_a_changed_inventory_is_refused(
    planned: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = workdir / "inv.yaml"
    inv.write_text(inv.read_text() + "# edited\n")
    assert main(["run", "--plan", str(planned), "-p", "token=tok-s3cret"]) == 2
    assert "inventory changed" in capsys.readouterr().err


def test_an_edited_plan_file_is_refused(planned: Path, capsys: pytest.CaptureFixture[str]) -> None:
    planned.write_text(planned.read_text().replace("grep -q 2.0", "grep -q 9.9"))
    assert main(["run", "--plan", str(planned), "-p", "token=tok-s3cret"]) == 2
    assert "edited after it was saved" in capsys.readouterr().err


def test_approval_by_the_operator_does_not_count(
    planned: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = [
        "run",
        "--plan",
        str(planned),
        "-p",
        "token=tok-s3cret",
        "--require-approval",
        "--operator",
        "alice",
    ]
    assert main(run) == 2
    assert main(["plan", "approve", str(planned), "--by", "alice", "--note", "looks fine"]) == 0
    assert main(run) == 2
    assert "only by the operator alice" in capsys.readouterr().err
    assert main(["plan", "approve", str(planned), "--by", "bob"]) == 0
    assert main(run) == 0
    assert main(["audit", "verify"]) == 0


def test_plan_markdown_matches_expected(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_runbook(workdir, "deploy", RUNBOOK)
    (workdir / "inv.yaml").write_text(
        "hosts: {local: {connection: local}}\nvars: {app_dir: /srv/app}\n"
    )
    assert main(["plan", "deploy", "-i", "inv.yaml", "-p", "token=x-secret", "--format", "md"]) == 0
    out = capsys.readouterr().out
    expected = (Path(__file__).parent / "cases" / "plans" / "deploy.md").read_text()
    assert out == expected


def test_check_runs_safe_steps_and_never_unsafe_ones(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(
        workdir,
        "chk",
        """
runbook: chk
preconditions:
  - {name: disk has room, run: "true"}
steps:
  - {id: look, run: echo looked > looked, safe: true, capture: seen}
  - {id: change, run: touch changed}
  - {id: after, run: "echo {{ seen }}", safe: true}
""",
    )
    assert main(["plan", "chk", "--check"]) == 0
    out = capsys.readouterr().out
    assert (workdir / "looked").exists()
    assert not (workdir / "changed").exists()
    assert "look: ok" in out and "change: not run (not marked safe)" in out and "after: ok" in out
    assert main(["audit", "verify"]) == 0  # what --check ran is in the audit log


def test_check_names_the_precondition_that_would_abort(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(
        workdir,
        "chk2",
        """
runbook: chk2
preconditions:
  - {name: service healthy, run: "exit 3"}
steps:
  - {id: change, run: touch changed}
""",
    )
    assert main(["plan", "chk2", "--check"]) == 1
    out = capsys.readouterr().out
    assert "would abort: precondition 'service healthy' fails on local: exit 3, expected 0" in out
    assert not (workdir / "changed").exists()


def test_run_id_in_a_command_is_the_one_difference_a_saved_plan_allows(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(
        workdir,
        "tagged",
        """
runbook: tagged
params: {word: {type: string, default: hi}}
steps:
  - id: tag
    run: echo {{ word }} {{ run_id }} > tag
""",
    )
    plan = workdir / "plan.json"
    assert main(["plan", "tagged", "-o", str(plan)]) == 0
    planned_id = json.loads(plan.read_text())["run_id"]
    assert main(["run", "--plan", str(plan)]) == 0
    word, run_id = (workdir / "tag").read_text().split()
    assert word == "hi" and run_id != planned_id  # the run's own id, not the plan's
    assert (workdir / "state" / "runs" / f"{run_id}.jsonl").exists()
    # anything else that differs is still refused: the same plan against an edited runbook
    text = (workdir / "runbooks" / "tagged.yaml").read_text()
    (workdir / "runbooks" / "tagged.yaml").write_text(text.replace("> tag", "> tag2"))
    capsys.readouterr()
    assert main(["run", "--plan", str(plan)]) == 2
    assert "runbooks/tagged.yaml changed since the plan was made" in capsys.readouterr().err


def test_an_approval_the_ledger_does_not_vouch_for_does_not_count(
    planned: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.audit.journal import Journal

    run = ["run", "--plan", str(planned), "-p", "token=tok-s3cret", "--require-approval"]
    assert main(["plan", "approve", str(planned), "--by", "alice"]) == 0  # sealed: counts
    (path,) = (workdir / "state" / "approvals").glob("approval-*.jsonl")
    # a well-chained record added by hand, never sealed in the ledger
    forged = Journal(path, path.stem)
    forged.append("plan.approved", {"plan_hash": path.stem.removeprefix("approval-"), "by": "bob"})
    forged.close()
    capsys.readouterr()
    assert main([*run, "--operator", "alice"]) == 2
    assert "not vouched for by the ledger: bob" in capsys.readouterr().err
    # (run as bob, alice's sealed approval would count; a plan runs once, so that is left to
    # test_approval_by_the_operator_does_not_count)
    # with a signing key, only seals that key signed vouch: alice's unsigned seal no longer does
    assert main(["audit", "keygen", "--out", str(workdir / "k")]) == 0
    keyed = ["--signing-key", str(workdir / "k"), *run, "--operator", "bob"]
    assert main(keyed) == 2
    assert (
        main(
            ["--signing-key", str(workdir / "k"), "plan", "approve", str(planned), "--by", "carol"]
        )
        == 0
    )
    assert main(keyed) == 0  # carol's signed seal vouches for carol's record only
    capsys.readouterr()
    assert main(["audit", "verify", "--public-key", str(workdir / "k.pub")]) == 4
    out = capsys.readouterr().out
    assert "FAILED at record 1" in out  # alice's approval, sealed without a key
    assert main(["audit", "verify"]) == 0  # without a key, unsealed records are only reported
    assert "not vouched for by the ledger: record(s) 2" in capsys.readouterr().out


def test_check_with_out_prints_and_saves_the_plan_too(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: `plan --check -o FILE` ran the checks, exit 0, and printed and saved no plan."""
    write_runbook(
        workdir,
        "chk",
        "runbook: chk\nsteps:\n  - {id: look, run: echo looked, safe: true}\n"
        "  - {id: change, run: touch changed}\n",
    )
    plan = workdir / "plan.json"
    assert main(["plan", "chk", "--check", "-o", str(plan)]) == 0
    out = capsys.readouterr().out
    assert "plan: chk" in out and "run: touch changed" in out  # the rendered plan
    assert "look: ok" in out and "change: not run (not marked safe)" in out  # and the checks
    assert not (workdir / "changed").exists()
    assert main(["run", "--plan", str(plan)]) == 0  # the saved plan runs
    assert (workdir / "changed").exists()


@pytest.mark.parametrize(
    "option",
    [
        ["--limit", "local"],
        ["-i", "inv.yaml"],
        ["-e", "version=9.9"],
        ["--params", "params.yaml"],
        ["-p", "version=9.9"],
        ["--from", "auth"],
    ],
)
@pytest.mark.parametrize("list_hosts", [False, True])
def test_an_option_that_would_change_what_runs_is_refused_with_a_plan(
    planned: Path,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    option: list[str],
    list_hosts: bool,
) -> None:
    """Was: --limit, -i and -e were silently ignored (exit 0, every host of the plan ran)."""
    (workdir / "params.yaml").write_text("version: '9.9'\n")
    also = ["--list-hosts"] if list_hosts else []
    capsys.readouterr()
    assert main(["run", "--plan", str(planned), "-p", "token=tok-s3cret", *option, *also]) == 2
    err = capsys.readouterr().err
    assert f"refusing {option[0]}" in err and "comes from the plan" in err
    assert not (workdir / "app" / "deployed").exists()


ONCE = "runbook: once\nsteps: [{id: a, run: 'echo ran >> out'}]\n"


def _used(workdir: Path) -> list[dict[str, object]]:
    ledger = workdir / "state" / "ledger.jsonl"
    lines = ledger.read_text().splitlines() if ledger.exists() else []
    return [e for e in map(json.loads, lines) if e["event"] == "plan.used"]


def test_a_run_refused_by_the_runbook_lock_does_not_use_up_the_plan(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: the plan's use was recorded before the lock was taken; the refused run (exit 2,
    nothing ran) used it up, and the ledger named a run that has no log."""
    import socket
    import subprocess

    from runner.execution.locks import lock_path

    write_runbook(workdir, "once", ONCE)
    plan = workdir / "plan.json"
    assert main(["plan", "once", "-o", str(plan)]) == 0
    holder = subprocess.Popen(["sleep", "60"])  # another run holds the lock: it is alive
    try:
        stat = Path(f"/proc/{holder.pid}/stat").read_text().rsplit(")", 1)[1].split()
        lock = lock_path(workdir / "state", "once", ["local"])
        lock.parent.mkdir(parents=True, exist_ok=True)
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        fields = {"machine": socket.gethostname(), "user": "x", "run_id": "other", "since": "now"}
        lock.write_text(
            json.dumps({**fields, "pid": holder.pid, "boot": boot, "started": int(stat[19])})
        )
        capsys.readouterr()
        assert main(["run", "--plan", str(plan)]) == 2
        assert f"pid {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert not (workdir / "out").exists() and _used(workdir) == []
    assert main(["run", "--plan", str(plan)]) == 0  # the holder is gone: its lock is taken over
    assert (workdir / "out").read_text() == "ran\n"
    assert main(["run", "--plan", str(plan)]) == 2  # and it still runs once
    assert "was already used by run" in capsys.readouterr().err
    assert main(["audit", "verify"]) == 0


def test_a_run_refused_for_a_bad_signing_key_does_not_use_up_the_plan(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "once", ONCE)
    plan = workdir / "plan.json"
    assert main(["plan", "once", "-o", str(plan)]) == 0
    (workdir / "bad.key").write_text("not a key\n")
    capsys.readouterr()
    assert main(["--signing-key", str(workdir / "bad.key"), "run", "--plan", str(plan)]) == 2
    assert "signing key" in capsys.readouterr().err
    assert not (workdir / "out").exists() and _used(workdir) == []
    assert main(["run", "--plan", str(plan)]) == 0
    (used,) = _used(workdir)
    (log,) = (workdir / "state" / "runs").glob("*.jsonl")
    assert used["run"] == log.stem  # the ledger names the run that used it, and it has a log


def test_a_plans_expiry_is_compared_as_a_time() -> None:
    """Was: compared as text, a `...:09Z` expiry stayed usable at `...:09.5Z`, and one that
    is no time at all ("never") never expired."""
    import datetime as dt

    from runner.audit.policy import Policy
    from runner.errors import UsageError
    from runner.planning.planuse import check_fresh

    past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    for expires in (past, "never"):
        with pytest.raises(UsageError, match="the plan expired"):
            check_fresh({"expires": expires}, Policy())
