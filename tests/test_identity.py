"""Approvals signed with people's own SSH keys, checked against policy.yaml: who may approve,
how many, and never the plan's author or its executor; plans run once and expire."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from conftest import write_runbook
from people import People

from runner.audit.journal import Journal
from runner.cli import main

POLICY = """
allowed_signers: {allowed}
plans: {{expires: 24h}}
groups:
  ops: [alice@example.com, bob@example.com, carol@example.com]
  leads: [carol@example.com]
runbooks:
  - match: deploy
    approvals: 2
    from: [ops]
"""


@pytest.fixture
def project(workdir: Path, people: People) -> Path:
    write_runbook(
        workdir, "deploy", "runbook: deploy\nsteps:\n  - id: touch\n    run: touch done\n"
    )
    (workdir / "policy.yaml").write_text(POLICY.format(allowed=people.allowed))
    return workdir


def _plan(people: People, out: str = "plan.json", author: str = "alice", *extra: str) -> str:
    assert main(["--ssh-key", people.key(author), "plan", "deploy", "-o", out, *extra]) == 0
    return out


def _approve(people: People, plan: str, who: str) -> int:
    return main(["--ssh-key", people.key(who), "plan", "approve", plan])


def _run(people: People, plan: str, who: str) -> int:
    return main(["--ssh-key", people.key(who), "run", "--plan", plan])


def test_two_signed_approvals_from_the_group_let_a_third_person_run_it(
    project: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(people, author="alice")
    assert _approve(people, plan, "bob") == 0
    assert "by bob@example.com (signed)" in capsys.readouterr().out
    assert _run(people, plan, "carol") == 2  # one approval of two
    err = capsys.readouterr().err
    assert "needs 2 signed from ops (have 1: bob@example.com)" in err
    assert _approve(people, plan, "carol") == 0  # through ssh-agent: carol's file is her .pub
    # carol approved: she may not also execute it; alice authored it: neither may she
    assert _run(people, plan, "carol") == 2
    assert "carol@example.com: the executor cannot approve what they run" in capsys.readouterr().err
    assert _run(people, plan, "alice") == 2
    assert "alice@example.com authored the plan" in capsys.readouterr().err
    assert not (project / "done").exists()
    # the plan's author approving does not count either
    assert _approve(people, plan, "alice") == 0
    assert main(["run", "--plan", plan]) == 2  # no key: the executor is not proven
    assert "the executor is not proven" in capsys.readouterr().err
    assert (project / "done").exists() is False


def test_a_valid_run_records_its_signed_use_and_the_plan_cannot_run_again(
    project: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    # a fourth principal executes: add dave to the signers
    plan = _plan(people, author="alice")
    assert _approve(people, plan, "bob") == 0
    assert _approve(people, plan, "carol") == 0
    signers = people.allowed.read_text()
    subprocess_keygen(people.dir / "dave")
    pub = (people.dir / "dave.pub").read_text().strip()
    people.allowed.write_text(signers + f'dave@example.com namespaces="runbook" {pub}\n')
    dave = ["--ssh-key", str(people.dir / "dave")]
    assert main([*dave, "run", "--plan", plan]) == 0
    assert (project / "done").exists()
    ledger = [json.loads(x) for x in (project / "state" / "ledger.jsonl").read_text().splitlines()]
    (used,) = [e for e in ledger if e["event"] == "plan.used"]
    assert used["by"] == "dave@example.com" and "sshsig" in used
    capsys.readouterr()
    assert main([*dave, "run", "--plan", plan]) == 2  # replayed
    assert "was already used by run" in capsys.readouterr().err


def test_a_key_not_in_allowed_signers_cannot_approve(
    project: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(people)
    assert _approve(people, plan, "stranger") == 2
    assert "is not in the allowed signers" in capsys.readouterr().err
    assert not (project / "state" / "approvals").exists()  # nothing recorded
    # claiming to be bob with alice's key is refused too
    assert (
        main(["--ssh-key", people.key("alice"), "plan", "approve", plan, "--by", "bob@example.com"])
        == 2
    )
    assert "belongs to alice@example.com, not to bob@example.com" in capsys.readouterr().err
    # and a typed name is refused: this policy does not allow unsigned approvals
    assert main(["plan", "approve", plan, "--by", "bob@example.com"]) == 2
    assert "the policy requires a signature" in capsys.readouterr().err


def test_an_approval_of_another_plan_copied_over_does_not_count(
    project: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(people, "plan.json")
    other = _plan(people, "other.json")
    assert _approve(people, plan, "bob") == 0
    assert _approve(people, other, "carol") == 0
    approvals = project / "state" / "approvals"
    digest = json.loads(Path(plan).read_text())["plan_hash"]
    other_digest = json.loads(Path(other).read_text())["plan_hash"]
    (carols,) = [
        json.loads(x)
        for x in (approvals / f"approval-{other_digest}.jsonl").read_text().splitlines()
    ]
    body = {
        k: v
        for k, v in carols.items()
        if k not in ("seq", "ts", "run_id", "event", "actor", "prev", "hash")
    }
    # carol's signed approval of the other plan, appended (well chained) to this plan's journal,
    # once as it is and once with the plan hash edited to this plan's; sealed in the ledger as a
    # state-dir writer can without a signing key (unsealed, they would not count at all)
    from runner.audit import ledger

    path = approvals / f"approval-{digest}.jsonl"
    with ledger.appending(path, "approval", project / "state") as j:
        j.append("plan.approved", body)
        j.append("plan.approved", {**body, "plan_hash": digest})
    capsys.readouterr()
    assert _run(people, plan, "carol") == 2
    err = capsys.readouterr().err
    assert "carol@example.com: signed another plan" in err
    assert "carol@example.com: not a valid signature by carol@example.com over this record" in err
    assert "have 1: bob@example.com" in err


def test_an_expired_plan_is_refused_and_its_expiry_cannot_be_edited(
    project: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(people, "plan.json", "alice", "--expires", "1s")
    data = json.loads(Path(plan).read_text())
    data["expires"] = "2000-01-01T00:00:00Z"  # an expired plan, hash recomputed by hand...
    from runner.planning import planfile

    data["plan_hash"] = planfile.digest(data)
    Path("old.json").write_text(json.dumps(data))
    assert main(["run", "--plan", "old.json"]) == 2
    assert "the plan expired at 2000-01-01T00:00:00Z" in capsys.readouterr().err
    # ...and pushing the expiry out changes the hash the author signed and approvers approved
    data["expires"] = "2999-01-01T00:00:00Z"
    data["plan_hash"] = planfile.digest(data)
    Path("late.json").write_text(json.dumps(data))
    assert _approve(people, "late.json", "bob") == 0
    assert _approve(people, "late.json", "carol") == 0
    assert _run(people, "late.json", "alice") == 2
    assert "the plan's author is not proven" in capsys.readouterr().err


def subprocess_keygen(path: Path) -> None:
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def test_a_runbook_that_needs_approvals_runs_only_from_a_plan_unless_an_emergency(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "deploy"]) == 2
    assert "needs 2 signed from ops approvals" in capsys.readouterr().err
    assert not (project / "done").exists()
    text = (project / "runbooks" / "deploy.yaml").read_text()
    (project / "runbooks" / "deploy.yaml").write_text(
        text.replace("steps:", "change: emergency\nsteps:")
    )
    assert main(["run", "deploy"]) == 0  # and it waits for a signed review (test_signoffs)
    assert (project / "done").exists()


def test_the_policy_example_in_the_docs_is_valid_and_a_bad_policy_is_placed(
    workdir: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import REPO

    from runner.audit import policy

    doc = (REPO / "docs" / "audit.md").read_text()
    example = doc.split("## Policy", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    (workdir / "allowed_signers").write_text(people.allowed.read_text())
    Path("policy.yaml").write_text(example)
    rules = policy.load()
    assert rules.runbook_rule("rolling-update") is not None and rules.expires == "24h"
    assert main(["schema", "policy"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "policy"
    Path("policy.yaml").write_text(example.replace("approvals: 2", "approvals: two"))
    write_runbook(workdir, "deploy", "runbook: deploy\nsteps:\n  - id: t\n    run: touch done\n")
    assert main(["run", "deploy"]) == 2
    assert not (workdir / "done").exists()
    assert "policy.yaml:9:16: runbooks[0].approvals" in capsys.readouterr().err


def test_validate_checks_the_policy_too(
    project: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate"]) == 0
    assert "ok  policy.yaml" in capsys.readouterr().out
    Path("policy.yaml").write_text(POLICY.format(allowed=people.allowed).replace("[ops]", "[opz]"))
    assert main(["validate"]) == 2
    assert "policy.yaml:10:12: runbooks[0].from[0]: unknown group 'opz'" in capsys.readouterr().err


LEADS = """
allowed_signers: {allowed}
groups:
  ops: [alice@example.com, bob@example.com]
  leads: [carol@example.com, dave@example.com]
runbooks:
  - match: deploy
    approvals: 1
    from: [leads]
"""


def _stamp(days: int) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days)


def _approval(people: People, plan: str, key: Path, who: str, at: str) -> dict[str, object]:
    """An approval of `plan` signed with `key` as `who`, dated `at` by its signer: what
    `plan approve` would record, made by hand (ssh-keygen -Y sign) with any date."""
    import subprocess

    from runner.audit import identity

    fields: dict[str, object] = {
        "vouches": "plan.approved",
        "plan_hash": json.loads(Path(plan).read_text())["plan_hash"],
        "runbook": "deploy",
        "meaning": "approved",
        "note": None,
        "at": at,
        "by": who,
    }
    signed = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-q", "-n", "runbook", "-f", str(key)],
        input=identity.statement(fields),
        capture_output=True,
        check=True,
    )
    return {**fields, "sshsig": signed.stdout.decode()}


def _append(project: Path, plan: str, record: dict[str, object], *, sealed: bool) -> None:
    """Append to the plan's approvals as a state-dir writer can: well chained, and `sealed` in
    the ledger by hand (without a signing key a seal is an unsigned ledger entry)."""
    from runner.audit import ledger
    from runner.planning.approvals import approvals_path

    digest = json.loads(Path(plan).read_text())["plan_hash"]
    path = approvals_path(project / "state", digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    if sealed:
        with ledger.appending(path, "approval", project / "state") as journal:
            journal.append("plan.approved", record)
    else:
        j = Journal(path, path.stem)
        j.append("plan.approved", record)
        j.close()


@pytest.fixture
def leads(workdir: Path, people: People) -> Path:
    """carol and dave lead; dave's key stopped being valid ten days ago."""
    write_runbook(
        workdir, "deploy", "runbook: deploy\nsteps:\n  - id: touch\n    run: touch done\n"
    )
    subprocess_keygen(people.dir / "dave")
    pub = (people.dir / "dave.pub").read_text().strip()
    until = _stamp(-10).strftime("%Y%m%d")
    with people.allowed.open("a") as f:
        f.write(f'dave@example.com namespaces="runbook",valid-before="{until}" {pub}\n')
    (workdir / "policy.yaml").write_text(LEADS.format(allowed=people.allowed))
    return workdir


def test_an_approval_appended_by_hand_does_not_count_under_a_policy(
    leads: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: the policy path read the approvals' chain alone and counted a record nobody's
    `plan approve` had sealed in the ledger."""
    plan = _plan(people, author="alice")
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    carol = _approval(people, plan, people.dir / "carol.pub", "carol@example.com", now)
    _append(leads, plan, carol, sealed=False)  # a valid signature, never sealed
    capsys.readouterr()
    assert _run(people, plan, "bob") == 2
    err = capsys.readouterr().err
    assert "needs 1 signed from leads (have 0)" in err
    assert "carol@example.com: not vouched for by the ledger" in err
    assert not (leads / "done").exists()
    assert _approve(people, plan, "carol") == 0  # an honest approval still counts
    assert _run(people, plan, "bob") == 0
    assert (leads / "done").exists()


def test_an_approval_backdated_into_an_expired_keys_life_does_not_count(
    leads: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: the signer's own `at` was the time ssh-keygen checked the key at: dave, whose key
    expired before the plan existed, dated his approval back into its life and it counted
    (here even sealed in the ledger, as a state-dir writer can without a signing key)."""
    plan = _plan(people, author="alice")
    assert _approve(people, plan, "dave") == 2  # the tool refuses him today
    assert "not in the allowed signers" in capsys.readouterr().err
    then = _stamp(-20).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    _append(
        leads,
        plan,
        _approval(people, plan, people.dir / "dave", "dave@example.com", then),
        sealed=True,
    )
    capsys.readouterr()
    assert _run(people, plan, "bob") == 2
    err = capsys.readouterr().err
    assert f"dave@example.com: dated {then}, before the plan was made" in err
    assert not (leads / "done").exists()


def test_an_approval_dated_far_from_when_it_was_recorded_does_not_count(
    leads: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    """An `at` inside the plan's life but an hour after the record was written: `plan approve`
    signs moments before it records, so that date is not when the key signed."""
    plan = _plan(people, author="alice")
    later = (_stamp(0) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    carol = _approval(people, plan, people.dir / "carol.pub", "carol@example.com", later)
    _append(leads, plan, carol, sealed=True)
    capsys.readouterr()
    assert _run(people, plan, "bob") == 2
    assert f"carol@example.com: dated {later} but recorded at " in capsys.readouterr().err
    assert not (leads / "done").exists()


def test_the_authors_signature_is_not_an_approval_even_without_separation_of_duties(
    leads: Path, people: People, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: tally counted any signature over the plan's hash, so with separation_of_duties off
    the plan's `author` record, copied into its approvals, approved it."""
    policy = leads / "policy.yaml"
    policy.write_text(
        policy.read_text().replace("from: [leads]", "from: [ops]\n    separation_of_duties: false")
    )
    plan = _plan(people, author="alice")
    author = json.loads(Path(plan).read_text())["author"]
    _append(leads, plan, author, sealed=True)
    capsys.readouterr()
    assert _run(people, plan, "bob") == 2
    assert "alice@example.com: signs plan.authored (authored), not plan.approved (approved)" in (
        capsys.readouterr().err
    )
    assert _approve(people, plan, "alice") == 0  # her approval proper does count
    assert _run(people, plan, "bob") == 0
