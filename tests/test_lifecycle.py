"""One run lifecycle (issue 12): what the record says is what happened.

Each test is a case a user met, run through the real CLI in a subprocess (`python -m runner`),
with no terminal unless it says so; the journal is read back with the product's own commands.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import run_events, write_runbook
from people import People
from sshd_fixture import SSHServer
from test_interrupts import Terminal
from test_rollout_ssh import ROLLOUT, UNREACHABLE, rollout_run, unreachable_inventory


def cli(
    workdir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`runbook ARGS` with no terminal, as a CI job runs it."""
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        check=False,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def run_id(workdir: Path) -> str:
    (log,) = (workdir / "state" / "runs").glob("*.jsonl")
    return log.stem


def trail(workdir: Path) -> list[str]:
    path = workdir / "trail"
    return path.read_text().split() if path.exists() else []


def listed(workdir: Path, *flags: str, env: dict[str, str] | None = None) -> list[dict]:
    out = cli(workdir, "--json", "audit", "list", *flags, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def assert_lawful(workdir: Path) -> None:
    """Every transition the run recorded is one lifecycle.py allows."""
    from runner.execution.lifecycle import allowed, derive

    life = derive(run_events(workdir / "state"))
    for t in life.history:
        assert allowed(t.previous, t.state), f"{t.previous} -> {t.state}"


MANUAL_UNDO = """
runbook: svc
steps:
  - id: stop-service
    run: echo stop >> trail
    rollback:
      - manual: Start the service again by hand.
  - id: migrate
    run: echo migrate >> trail; exit 1
"""


def test_a_manual_undo_without_a_terminal_waits_and_resume_continues_the_rollback(
    workdir: Path,
) -> None:
    """Was: a traceback (runner.execution.steps.Waiting), `■ error (exit 3)` while the exit code was 1;
    then `resume --confirm` skipped the failed step as completed and ended `succeeded`."""
    write_runbook(workdir, "svc", MANUAL_UNDO)
    first = cli(workdir, "run", "svc")
    assert first.returncode == 5, first.stdout + first.stderr
    assert "Traceback" not in first.stderr and "Waiting" not in first.stderr
    assert "■ waiting (exit 5)" in first.stdout
    assert first.stdout.count("Start the service again by hand.") == 1
    rid = run_id(workdir)
    resumed = cli(workdir, "resume", rid, "--confirm", "stop-service", "--by", "dana")
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert "■ rolled-back (exit 1)" in resumed.stdout
    assert "completed before the run was resumed" not in resumed.stdout
    assert trail(workdir) == ["stop", "migrate"]  # nothing of the steps ran again
    [row] = listed(workdir)
    assert row["outcome"] == "rolled-back" and row["exit_code"] == 1
    assert [t["state"] for t in row["transitions"]] == [
        "running",
        "rolling-back",
        "waiting",
        "rolling-back",
        "rolled-back",
    ]
    assert cli(workdir, "resume", rid).returncode == 2  # closed: nothing to resume
    assert_lawful(workdir)


DEPLOY = """
runbook: deploy
steps:
  - id: ship
    run: echo ship >> trail
    rollback: [{run: echo unship >> trail}]
"""


def test_views_show_the_last_transition_not_the_first_outcome(workdir: Path) -> None:
    """Was: after `rollback`, list/show/export said `succeeded`; --status rolled-back found none."""
    write_runbook(workdir, "deploy", DEPLOY)
    assert cli(workdir, "run", "deploy").returncode == 0
    rid = run_id(workdir)
    back = cli(workdir, "rollback", rid, "--yes", "--reason", "error rate doubled")
    assert back.returncode == 0, back.stdout + back.stderr
    assert trail(workdir) == ["ship", "unship"]
    [row] = listed(workdir, "--status", "rolled-back")
    assert row["run_id"] == rid and row["outcome"] == "rolled-back"
    assert listed(workdir, "--status", "succeeded") == []
    show = cli(workdir, "audit", "show", rid).stdout
    assert "outcome:  rolled-back" in show
    assert "rolling-back" in show and "error rate doubled" in show  # who, when, why
    html = cli(workdir, "audit", "export", rid, "--format", "html").stdout
    assert "<th>outcome</th><td><pre>rolled-back</pre>" in html
    assert "error rate doubled" in html
    csv_text = cli(workdir, "audit", "export", rid, "--format", "csv").stdout
    states = [r for r in csv.DictReader(io.StringIO(csv_text)) if r["event"] == "run.state"]
    assert [r["state"] for r in states] == ["running", "succeeded", "rolling-back", "rolled-back"]
    assert states[2]["reason"] == "error rate doubled" and states[2]["by"]
    assert_lawful(workdir)


def test_a_resumed_and_completed_run_reads_succeeded(workdir: Path) -> None:
    write_runbook(
        workdir,
        "ticket",
        """
runbook: ticket
steps:
  - {id: approve, manual: Approve the change in the ticket.}
  - {id: after, run: echo after >> trail}
""",
    )
    assert cli(workdir, "run", "ticket").returncode == 5
    [row] = listed(workdir)
    assert row["outcome"] == "waiting"
    rid = run_id(workdir)
    assert cli(workdir, "resume", rid, "--confirm", "approve", "--by", "dana").returncode == 0
    [row] = listed(workdir, "--status", "succeeded")
    assert row["run_id"] == rid and trail(workdir) == ["after"]


def test_rolling_back_a_succeeded_run_asks_and_records_the_reason(workdir: Path) -> None:
    """Was: `rollback` of a finished run asked nothing and recorded no reason."""
    write_runbook(workdir, "deploy", DEPLOY)
    assert cli(workdir, "run", "deploy").returncode == 0
    rid = run_id(workdir)
    refused = cli(workdir, "rollback", rid)  # no terminal, no --yes: nothing is undone
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert trail(workdir) == ["ship"]
    term = Terminal(workdir, "rollback", rid, "--reason", "customer asked")
    term.expect("succeeded. Undo it (ship on local)? [y/N]")
    term.send("y\n")
    assert term.wait() == 0
    assert trail(workdir) == ["ship", "unship"]
    recs = run_events(workdir / "state")
    [req] = [r for r in recs if r["event"] == "rollback.requested"]
    assert req["reason"] == "customer asked"
    [state] = [r for r in recs if r["event"] == "run.state" and r["state"] == "rolling-back"]
    assert state["reason"] == "customer asked" and state["from"] == "succeeded"


FAILING_UNDO = """
runbook: stuck
steps:
  - id: one
    run: echo one >> trail
    rollback: [{run: echo undo-one >> trail}]
  - id: two
    run: echo two >> trail
    rollback: [{run: "test -e fixed && echo undo-two >> trail"}]
  - id: three
    run: exit 1
"""


def test_a_person_resolves_an_undo_the_tool_cannot_do_and_the_run_closes(workdir: Path) -> None:
    """Was: `rollback RUN_ID` repeated the failing undo forever; the run could never close."""
    write_runbook(workdir, "stuck", FAILING_UNDO)
    assert cli(workdir, "run", "stuck").returncode == 3
    rid = run_id(workdir)
    again = cli(workdir, "rollback", rid)
    assert again.returncode == 3 and "■ rollback-failed (exit 3)" in again.stdout
    done = cli(workdir, "resolve", rid, "--step", "two", "--by", "dana", "--reason", "restored")
    assert done.returncode == 0, done.stderr
    assert f"`runbook resume {rid}` goes on with the rollback (one on local)" in done.stdout
    assert listed(workdir)[0]["outcome"] == "rollback-failed"
    last = cli(workdir, "resume", rid)
    assert last.returncode == 0 and "■ resolved (exit 0)" in last.stdout, last.stdout
    assert trail(workdir) == ["one", "two", "undo-one"]  # two's undo never ran: done by hand
    [row] = listed(workdir, "--status", "resolved")
    assert row["run_id"] == rid
    show = cli(workdir, "audit", "show", rid).stdout
    assert "step two undone by hand by dana: restored" in show
    assert cli(workdir, "audit", "verify").returncode == 0
    assert_lawful(workdir)


def test_resolving_the_last_undo_closes_the_run_at_once(workdir: Path) -> None:
    write_runbook(workdir, "stuck", FAILING_UNDO.replace("echo undo-one", "exit 1; echo"))
    assert cli(workdir, "run", "stuck").returncode == 3
    rid = run_id(workdir)
    for step in ("two", "one"):
        out = cli(workdir, "resolve", rid, "--step", step, "--by", "dana", "--reason", "by hand")
        assert out.returncode == 0, out.stderr
    assert "resolved by dana" in out.stdout
    [row] = listed(workdir)
    assert row["outcome"] == "resolved" and row["exit_code"] == 0
    assert row["transitions"][-1]["by"] == "dana"
    nothing = cli(workdir, "resolve", rid, "--step", "one", "--by", "x", "--reason", "y")
    assert nothing.returncode == 2


WATCH = """
runbook: watch
steps:
  - id: prep
    run: echo prep >> trail
    rollback: [{run: echo undo-prep >> trail}]
  - {id: look, manual: Watch the dashboard for 15 minutes.}
  - {id: after, run: echo after >> trail}
"""


def test_manual_step_enter_does_not_fail_it_and_not_yet_leaves_the_run_waiting(
    workdir: Path,
) -> None:
    """Was: `Done? [y/N]`, Enter failed the step and rolled back completed work; no "not yet";
    the manual text printed twice."""
    write_runbook(workdir, "watch", WATCH)
    term = Terminal(workdir, "run", "watch")
    term.expect("[d]one / [n]ot yet / [f]ailed")
    term.send("\n")  # Enter alone decides nothing: asked again
    term.expect("answer one of")
    term.send("n\n")
    assert term.wait() == 5
    assert term.seen.count("Watch the dashboard for 15 minutes.") == 1
    assert trail(workdir) == ["prep"]  # nothing rolled back
    rid = run_id(workdir)
    assert listed(workdir)[0]["outcome"] == "waiting"
    term = Terminal(workdir, "resume", rid)
    term.expect("[d]one / [n]ot yet / [f]ailed")
    term.send("d\n")
    assert term.wait() == 0
    assert trail(workdir) == ["prep", "after"]


def test_manual_step_answered_failed_rolls_back(workdir: Path) -> None:
    write_runbook(workdir, "watch", WATCH)
    term = Terminal(workdir, "run", "watch")
    term.expect("[d]one / [n]ot yet / [f]ailed")
    term.send("f\n")
    assert term.wait() == 1
    assert trail(workdir) == ["prep", "undo-prep"]


@pytest.mark.parametrize("failing", [False, True])
def test_exit_code_and_last_line_agree(workdir: Path, failing: bool) -> None:
    write_runbook(
        workdir,
        "x",
        f"""
runbook: x
steps:
  - {{id: a, run: "{"exit 1" if failing else "true"}"}}
""",
    )
    out = cli(workdir, "run", "x")
    assert f"(exit {out.returncode})" in out.stdout.splitlines()[-1]


def test_signed_runs_read_closed_and_every_command_signs_its_own_segment(workdir: Path) -> None:
    """Was: every signed run `open (no run.finished record)`; after a legitimate `rollback`,
    `FAILED at record 11: records were appended after the run's signature`."""
    assert cli(workdir, "audit", "keygen", "--out", str(workdir / "k")).returncode == 0
    key = {"RUNBOOK_SIGNING_KEY": str(workdir / "k")}
    write_runbook(workdir, "stuck", FAILING_UNDO)
    assert cli(workdir, "run", "stuck", env=key).returncode == 3
    rid = run_id(workdir)
    out = cli(workdir, "audit", "verify", "--public-key", str(workdir / "k.pub"))
    assert out.returncode == 0 and f"{rid}: ok" in out.stdout and "closed" in out.stdout
    assert "open" not in out.stdout
    assert cli(workdir, "rollback", rid, env=key).returncode == 3
    resolved = cli(workdir, "resolve", rid, "--step", "two", "--by", "d", "--reason", "r", env=key)
    assert resolved.returncode == 0
    assert cli(workdir, "rollback", rid, env=key).returncode == 0
    recs = run_events(workdir / "state")
    assert sum(r["event"] == "run.signature" for r in recs) == 4  # run, rollback, resolve, rollback
    out = cli(workdir, "audit", "verify", "--public-key", str(workdir / "k.pub"))
    assert out.returncode == 0 and "closed, resolved" in out.stdout, out.stdout
    [row] = listed(workdir)
    assert row["verified"] == "verified" and row["outcome"] == "resolved"


def test_a_segment_appended_without_the_key_is_flagged(workdir: Path) -> None:
    assert cli(workdir, "audit", "keygen", "--out", str(workdir / "k")).returncode == 0
    write_runbook(workdir, "stuck", FAILING_UNDO)
    assert (
        cli(workdir, "run", "stuck", env={"RUNBOOK_SIGNING_KEY": str(workdir / "k")}).returncode
        == 3
    )
    signed = len(run_events(workdir / "state"))
    assert cli(workdir, "rollback", run_id(workdir)).returncode == 3  # no key: unsigned segment
    out = cli(workdir, "audit", "verify")
    assert out.returncode == 4
    assert f"FAILED at record {signed + 1}: records {signed + 1}-" in out.stdout
    assert "not covered by a signature" in out.stdout


def fleet(workdir: Path, sshd: SSHServer, hosts: int) -> Path:
    """An inventory of `hosts` loopback SSH hosts, all in the group `all`."""
    inv = sshd.write_inventory(workdir / "inv.yaml", hosts=hosts)
    data = yaml.safe_load(inv.read_text())
    data["groups"] = {"all": list(data["hosts"])}
    inv.write_text(yaml.safe_dump(data))
    return inv


@pytest.mark.ssh
def test_a_multi_host_run_ends_with_a_recap(
    workdir: Path, sshd: SSHServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = rollout_run(workdir, sshd, '{batch: [1, 3, "100%"], max_failures: 0}', "h3", 6)
    assert code == 1
    out = capsys.readouterr().out
    recap = out[out.index("RECAP") :].splitlines()
    assert recap[1:7] == [
        "h1  ok=2  failed=0  skipped=0  rolled back=0",
        "h2  ok=2  failed=0  skipped=0  rolled back=0",
        "h3  ok=1  failed=1  skipped=0  rolled back=1",
        "h4  ok=2  failed=0  skipped=0  rolled back=0",
        "h5  never started",
        "h6  never started",
    ]
    assert recap[7].startswith("■ failed (exit 1)")  # h1, h2 and h4 keep their change


@pytest.mark.ssh
def test_the_batch_gate_names_the_hosts_of_the_next_batch(workdir: Path, sshd: SSHServer) -> None:
    inv = fleet(workdir, sshd, 4)
    (workdir / "out").mkdir()
    write_runbook(workdir, "roll", ROLLOUT.format(rollout="{batch: [1, 2, 1], pause: confirm}"))
    term = Terminal(workdir, "run", "roll", "-i", str(inv), "-p", f"out={workdir / 'out'}")
    term.expect("Batch 1 done. Start batch 2 (h2, h3)? [y/N]")
    term.send("n\n")
    assert term.wait() == 1
    [gate] = [r for r in run_events(workdir / "state") if r["event"] == "confirm"]
    assert gate["hosts"] == ["h2", "h3"] and gate["answer"] is False
    assert "h4  never started" in term.seen


def test_a_log_written_before_run_state_is_read_through_its_outcomes() -> None:
    from runner.execution.lifecycle import derive

    def rec(seq: int, event: str, **f: object) -> dict:
        return {"seq": seq, "ts": f"t{seq}", "event": event, "actor": {"user": "ops"}, **f}

    life = derive(
        [
            rec(1, "run.started"),
            rec(2, "run.finished", outcome="halted", exit_code=1),
            rec(3, "rollback.requested"),
            rec(4, "run.finished", outcome="rollback-failed", exit_code=3),
        ]
    )
    assert [t.state for t in life.history] == [
        "running",
        "failed",
        "rolling-back",
        "rollback-failed",
    ]
    assert (life.state, life.exit_code, life.phase) == ("rollback-failed", 3, "rollback")
    assert life.history[1].previous == "running" and life.history[1].by == "ops"


def test_a_manual_step_done_at_the_terminal_is_vouched_for_under_the_policy(
    workdir: Path, people: People
) -> None:
    """Was: a "done" typed at the terminal recorded the OS user only, unsigned, even under a
    policy that requires signatures (only `resume --confirm` was vouched for)."""
    from runner.audit import identity

    (workdir / "policy.yaml").write_text(f"allowed_signers: {people.allowed}\n")
    write_runbook(workdir, "watch", WATCH)
    term = Terminal(workdir, "run", "watch")  # no key: the policy refuses an unsigned "done"
    term.expect("[d]one / [n]ot yet / [f]ailed")
    term.send("d\n")
    assert term.wait() == 5
    assert "not vouched for" in term.seen and "--ssh-key" in term.seen
    assert trail(workdir) == ["prep"]  # waiting, nothing undone, nothing after it ran
    term = Terminal(workdir, "resume", run_id(workdir), "--ssh-key", people.key("bob"))
    term.expect("[d]one / [n]ot yet / [f]ailed")
    term.send("d\n")
    assert term.wait() == 0
    assert trail(workdir) == ["prep", "after"]
    [rec] = [e for e in run_events(workdir / "state") if e["event"] == "manual.confirmed"]
    [signed] = rec["confirmed"]
    assert rec["by"] == signed["by"] == "bob@example.com" and signed["step"] == "look"
    assert identity.check(signed, people.allowed).ok
    assert not identity.check({**signed, "step": "prep"}, people.allowed).ok
    assert cli(workdir, "audit", "verify").returncode == 0


def test_a_resolve_is_signed_with_the_persons_key(workdir: Path, people: People) -> None:
    """`resolve` is a person's claim: vouched for like a manual confirmation (identity.py)."""
    from runner.audit import identity
    from runner.cli import main

    (workdir / "policy.yaml").write_text(f"allowed_signers: {people.allowed}\n")
    write_runbook(workdir, "stuck", FAILING_UNDO)
    assert cli(workdir, "run", "stuck").returncode == 3
    rid = run_id(workdir)
    claim = ["resolve", rid, "--step", "two", "--reason", "restored by hand"]
    assert main(["--ssh-key", people.key("stranger"), *claim, "--by", "x"]) == 2  # not a signer
    assert main(["--ssh-key", people.key("alice"), *claim, "--by", "alice@example.com"]) == 0
    [rec] = [e for e in run_events(workdir / "state") if e["event"] == "step.resolved"]
    assert rec["by"] == "alice@example.com" and rec["reason"] == "restored by hand"
    assert identity.check(identity.body(rec), people.allowed).ok
    assert not identity.check(identity.body({**rec, "step": "one"}), people.allowed).ok
    assert main(["audit", "verify"]) == 0


# --- `rolled-back` only when everything the run changed was undone ------------------------------

KEEP = """
runbook: keep
params: {out: {type: string, required: true}}
targets: all
steps:
  - id: change
    run: echo changed >> {{ out }}/{{ host }}.changed
    rollback:
      - run: echo undone >> {{ out }}/{{ host }}.rolledback
  - id: check
    run: "[ {{ host }} != h2 ] || [ -e {{ out }}/fixed ]"
"""


def last_transition(workdir: Path) -> tuple[str | None, int, str]:
    from runner.execution.lifecycle import derive

    life = derive(run_events(workdir / "state"))
    return life.state, life.exit_code, life.history[-1].reason


def lines_of(out: Path, suffix: str) -> dict[str, int]:
    return {p.name[: -len(suffix)]: len(p.read_text().splitlines()) for p in out.glob(f"*{suffix}")}


@pytest.mark.ssh
def test_hosts_that_kept_their_change_leave_the_run_failed_and_resume_finishes_the_rest(
    workdir: Path, sshd: SSHServer, make_sshd: Callable[..., SSHServer]
) -> None:
    """Was: `rolled-back` (exit 1) because h2's rollback held, though h1 kept its change and
    nothing ran on h3 (down); `resume` then refused the run: "rolled-back; nothing to resume"."""
    from runner.cli import main

    down = make_sshd()
    down.stop()  # h3 is down: its port refuses connections
    inv = fleet(workdir, sshd, 2)
    data = yaml.safe_load(inv.read_text())
    data["hosts"]["h3"] = {
        "address": down.addresses[0],
        "port": down.port,
        "user": down.user,
        "key": str(down.client_key),
    }
    data["groups"]["all"].append("h3")
    known = workdir / "known_hosts"
    known.write_text(sshd.known_hosts.read_text() + down.known_hosts.read_text())
    data["ssh"]["known_hosts"] = str(known)
    inv.write_text(yaml.safe_dump(data))
    out = workdir / "out"
    out.mkdir()
    write_runbook(workdir, "keep", KEEP)
    assert main(["run", "keep", "-i", str(inv), "-p", f"out={out}"]) == 1
    assert lines_of(out, ".changed") == {"h1": 1, "h2": 1}
    assert lines_of(out, ".rolledback") == {"h2": 1}
    state, code, reason = last_transition(workdir)
    assert (state, code) == ("failed", 1)
    assert "2 of 3 hosts failed: h2, h3 (h2: step 'check': exit 1" in reason
    assert "rolled back: h2" in reason and "kept their change: h1" in reason
    assert "nothing to undo: h3" in reason
    # h3 is back and h2's cause is fixed: resume finishes them; h1's change is not made again
    down.start()
    (out / "fixed").touch()
    assert main(["resume", run_id(workdir)]) == 0
    assert lines_of(out, ".changed") == {"h1": 1, "h2": 2, "h3": 1}
    assert lines_of(out, ".rolledback") == {"h2": 1}
    assert last_transition(workdir)[:2] == ("succeeded", 0)
    assert main(["audit", "verify"]) == 0
    assert_lawful(workdir)


@pytest.mark.ssh
def test_an_unreachable_host_and_hosts_that_kept_their_change_undo_nothing(
    workdir: Path, sshd: SSHServer
) -> None:
    """Was: `rolled-back`: the unreachable host's empty rollback "held" and named the run."""
    from runner.cli import main

    out = workdir / "out"
    out.mkdir()
    inv = unreachable_inventory(workdir, sshd)
    write_runbook(workdir, "unreach", UNREACHABLE.format(max_failures=1, preconditions=""))
    assert main(["run", "unreach", "-i", str(inv), "-p", f"out={out}"]) == 1
    assert sorted(lines_of(out, ".changed")) == ["h1", "h2", "h3"]
    state, code, reason = last_transition(workdir)
    assert (state, code) == ("failed", 1)
    assert "nothing was undone" in reason and "kept their change: h1, h2, h3" in reason
    assert "1 of 4 hosts failed: bad (bad: " in reason and "connection refused" in reason
    assert_lawful(workdir)


@pytest.mark.ssh
@pytest.mark.parametrize(
    ("rollout", "fail", "hosts", "reason"),
    [
        # the canary failed and was undone; the others never started: nothing is left changed
        ('{batch: [1, "100%"]}', "h1", 3, "rolled back: h1; never started: h2, h3"),
        # the whole (only) batch goes back
        ("{batch: 3, on_batch_failure: rollback-batch}", "h2", 3, "rolled back: h1, h2, h3"),
    ],
)
def test_a_run_is_rolled_back_when_every_host_that_changed_was_undone(
    workdir: Path, sshd: SSHServer, rollout: str, fail: str, hosts: int, reason: str
) -> None:
    code, _ = rollout_run(workdir, sshd, rollout, fail, hosts)
    assert code == 1
    state, exit_code, why = last_transition(workdir)
    assert (state, exit_code) == ("rolled-back", 1)
    assert reason in why
    assert_lawful(workdir)


NO_UNDO = """
runbook: plain
steps:
  - {id: a, run: "echo a >> trail; test -e fixed"}
"""


def test_a_failed_step_without_a_rollback_leaves_the_run_failed_and_resumable(
    workdir: Path,
) -> None:
    """Was: `rolled-back` (exit 1) though nothing was undone; `resume` refused it as closed."""
    write_runbook(workdir, "plain", NO_UNDO)
    first = cli(workdir, "run", "plain")
    assert first.returncode == 1
    assert "■ failed (exit 1)" in first.stdout, first.stdout
    [row] = listed(workdir)
    assert row["outcome"] == "failed"
    assert "nothing was undone" in row["transitions"][-1]["reason"]
    (workdir / "fixed").touch()
    again = cli(workdir, "resume", run_id(workdir))
    assert again.returncode == 0, again.stdout + again.stderr
    assert trail(workdir) == ["a", "a"]
    assert_lawful(workdir)


# --- the recap of a command that only rolls back ----------------------------------------------


@pytest.mark.ssh
def test_the_recap_of_a_rollback_counts_what_it_undid(
    workdir: Path, sshd: SSHServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: `h1  never started` for every host, right after rolling them back."""
    from runner.cli import main

    code, _ = rollout_run(workdir, sshd, "{batch: 3}", "", 3)
    assert code == 0
    rid = run_id(workdir)
    capsys.readouterr()
    assert main(["rollback", rid, "--yes", "--reason", "test"]) == 0
    shown = capsys.readouterr().out
    recap = shown[shown.index("RECAP") :].splitlines()
    assert recap[1:4] == [
        "h1  rolled back=1  undo failed=0",
        "h2  rolled back=1  undo failed=0",
        "h3  rolled back=1  undo failed=0",
    ]
    assert recap[4].startswith("■ rolled-back (exit 0)")


FLAKY_UNDO = """
runbook: flaky
params: {out: {type: string, required: true}}
targets: all
steps:
  - id: a
    run: echo a > {{ out }}/{{ host }}.a
    rollback:
      - run: "[ {{ host }} != h2 ] || [ -e {{ out }}/fixed ]"
  - id: b
    run: exit 1
"""


@pytest.mark.ssh
def test_the_recap_of_a_resumed_rollback_says_what_it_undid_and_what_was_left(
    workdir: Path, sshd: SSHServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.cli import main

    inv = fleet(workdir, sshd, 3)
    out = workdir / "out"
    out.mkdir()
    write_runbook(workdir, "flaky", FLAKY_UNDO)
    assert main(["run", "flaky", "-i", str(inv), "-p", f"out={out}"]) == 3
    shown = capsys.readouterr().out
    recap = shown[shown.index("RECAP") :].splitlines()
    assert recap[2] == "h2  ok=1  failed=1  skipped=0  rolled back=0"
    (out / "fixed").touch()
    assert main(["resume", run_id(workdir)]) == 1
    shown = capsys.readouterr().out
    recap = shown[shown.index("RECAP") :].splitlines()
    assert recap[1:4] == [
        "h1  nothing left to undo",
        "h2  rolled back=1  undo failed=0",
        "h3  nothing left to undo",
    ]


MANUAL_UNDO_FLEET = """
runbook: svc
targets: all
steps:
  - id: stop-service
    run: "true"
    rollback:
      - manual: Start the service again by hand.
  - id: migrate
    run: exit 1
"""


@pytest.mark.ssh
@pytest.mark.usefixtures("no_tty")
def test_the_recap_says_which_hosts_wait_for_a_person(
    workdir: Path, sshd: SSHServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.cli import main

    inv = fleet(workdir, sshd, 2)
    write_runbook(workdir, "svc", MANUAL_UNDO_FLEET)
    assert main(["run", "svc", "-i", str(inv)]) == 5
    shown = capsys.readouterr().out
    recap = shown[shown.index("RECAP") :].splitlines()
    assert recap[1] == "h1  ok=1  failed=1  skipped=0  rolled back=0  waiting for a person"
    assert main(["resume", run_id(workdir)]) == 5  # still no terminal: it waits again
    shown = capsys.readouterr().out
    recap = shown[shown.index("RECAP") :].splitlines()
    assert recap[1:3] == [
        "h1  rolled back=0  undo failed=0  waiting for a person",
        "h2  rolled back=0  undo failed=0  waiting for a person",
    ]
