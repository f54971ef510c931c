"""A state dir with every kind of evidence an auditor samples, made with the real CLI against
the demo target (tests/demo_target.py), which test_audit_report_browser.py reads the report of;
and the helpers both report tests share."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from demo_target import REPO, Demo
from people import People

from runner.cli import main

# Output an operator cannot see on a terminal but that would repaint an auditor's: colours, a
# window title, clear-screen, a carriage return that hides what precedes it, a bidi override.
NOISY = r"""runbook: noisy
title: A step whose output carries terminal escapes
change: normal
params: {token: {type: string, secret: true}}
targets: local
steps:
  - id: paint
    run: |
      echo token={{ token }}
      printf 'red:\033[31mRED\033[0m title:\033]0;owned\007 clear:\033[2J cr:hidden\rshown rlo:\342\200\256cod.exe\n'
"""
SECRET = "hunter2-s3cr3t"


@dataclass
class Scenario:
    """The run ids (and checklist instances) an auditor should find in the report."""

    succeeded: str
    rolled_back: str
    resumed: str
    emergency_reviewed: str
    emergency_unreviewed: str
    planned: str
    noisy: str
    plan_hash: str


def _new_run(state: Path, before: set[str]) -> str:
    (new,) = {p.stem for p in (state / "runs").glob("*.jsonl")} - before
    return new


def _runs(state: Path) -> set[str]:
    return (
        {p.stem for p in (state / "runs").glob("*.jsonl")} if (state / "runs").is_dir() else set()
    )


def run_of(state: Path, args: list[str], expect: int) -> str:
    before = _runs(state)
    assert main(args) == expect, args
    return _new_run(state, before)


def build_scenario(demo: Demo, workdir: Path, people: People) -> Scenario:
    """Every kind of evidence the issue names, made with the real CLI against the demo target.
    Carol approves the plan and alice signs the log review with their own SSH keys (people.py);
    the other names are typed."""
    state = workdir / "state"
    inv = ["-i", str(demo.inv)]
    rb = REPO / "runbooks"

    def run(name: str, *args: str, expect: int = 0) -> str:
        return run_of(state, ["run", str(rb / f"{name}.yaml"), *inv, "--yes", *args], expect)

    succeeded = run("backup", "-p", "kind=all", "--operator", "olga", "--ticket", "CHG-1001")
    rolled_back = run(
        "config-change", "-p", "key=COPY_RATIO", "-p", "value=7", "--operator", "olga", expect=1
    )
    # waits at the manual step (no terminal), then a person confirms it
    resumed = run(
        "recovery", "-p", "action=restore", "-p", "kind=all", "--ticket", "CHG-1002", expect=5
    )
    assert main(["resume", resumed, "--confirm", "reconfigure", "--by", "rita", "--yes"]) == 0
    (demo.app / ".circuit_breaker_active").write_text("tripped\n")
    emergency_reviewed = run(
        "incident-response", "-p", "severity=high", "-p", "reset_circuit_breaker=true"
    )
    assert main(["audit", "review", emergency_reviewed, "--by", "victor", "--note", "CAB ok"]) == 0
    emergency_unreviewed = run("database-corruption", "--operator", "eve")

    plan_file = workdir / "plan.json"
    assert (
        main(
            [
                "plan",
                str(rb / "config-change.yaml"),
                *inv,
                "-p",
                "key=LOG_LEVEL",
                "-p",
                "value=DEBUG",
                "-o",
                str(plan_file),
            ]
        )
        == 0
    )
    plan_hash = json.loads(plan_file.read_text())["plan_hash"]
    carol = ["--ssh-key", people.key("carol")]
    assert main([*carol, "plan", "approve", str(plan_file), "--note", "CAB-7"]) == 0
    planned = run_of(
        state,
        [
            "run",
            "--plan",
            str(plan_file),
            "--require-approval",
            "--yes",
            "--operator",
            "dave",
            "--ticket",
            "CHG-1003",
        ],
        0,
    )
    noisy_rb = workdir / "runbooks" / "noisy.yaml"
    noisy_rb.write_text(NOISY)
    noisy = run_of(state, ["run", str(noisy_rb), *inv, "--yes", "-p", f"token={SECRET}"], 0)

    daily = str(REPO / "checklists" / "daily.yaml")
    period = ["--period", "2026-11-02"]  # a past day: left incomplete, it is overdue
    assert main(["checklist", "start", daily, *period]) == 0
    assert main(["checklist", "run", daily, "log-review", *period, *inv, "--by", "olga"]) == 0
    alice = ["--ssh-key", people.key("alice")]
    assert main([*alice, "checklist", "sign", daily, "log-review", *period]) == 0
    assert (
        main(
            [
                "checklist",
                "skip",
                daily,
                "security-scan",
                *period,
                "--by",
                "alice",
                "--reason",
                "scanner down, INC-123",
            ]
        )
        == 0
    )
    pir = str(REPO / "checklists" / "post-incident-review.yaml")
    inc = ["--period", "INC-20261102-0900"]
    assert main(["checklist", "start", pir, *inc]) == 0
    for item in (
        "incident-summary",
        "timeline",
        "root-cause-analysis",
        "response-analysis",
        "action-items",
        "prevention-measures",
        "lessons-learned",
        "attendees",
    ):
        assert main(["checklist", "sign", pir, item, *inc, "--by", "alice"]) == 0
    for item, meaning in (("root-cause-analysis", "reviewed"), ("action-items", "approved")):
        assert (
            main(["checklist", "sign", pir, item, *inc, "--by", "bob", "--meaning", meaning]) == 0
        )
    assert (
        main(
            [
                "checklist",
                "skip",
                pir,
                "next-review-date",
                *inc,
                "--by",
                "bob",
                "--reason",
                "no follow-up needed",
            ]
        )
        == 0
    )
    assert main(["checklist", "complete", pir, *inc, "--by", "bob"]) == 0
    return Scenario(
        succeeded,
        rolled_back,
        resumed,
        emergency_reviewed,
        emergency_unreviewed,
        planned,
        noisy,
        plan_hash,
    )


# Characters that must never reach an auditor's terminal or browser as they are (termsafe.py).
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def out(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == 0, args
    return capsys.readouterr().out


def out_code(capsys: pytest.CaptureFixture[str], code: int, *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == code, args
    return capsys.readouterr().out
