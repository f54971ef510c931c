"""Issue 18, item 3: state files are never opened through a symlink someone planted in the state
dir, and everything the runner creates has its own mode whatever the umask (real CLI, real files)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write_runbook

from runner.cli import main

RUNBOOK = "runbook: rb\nsteps:\n  - {id: a, run: echo a}\n"


@pytest.fixture
def umask_000() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_a_planted_ledger_symlink_is_refused_and_the_victim_untouched(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "rb", RUNBOOK)
    victim = workdir / "victim"
    victim.write_bytes(b"root:x:0:0\nhalf a line")
    (workdir / "state").mkdir()
    (workdir / "state" / "ledger.jsonl").symlink_to(victim)
    code = main(["run", "rb"])
    assert code == 2
    assert "symbolic link" in capsys.readouterr().err
    assert victim.read_bytes() == b"root:x:0:0\nhalf a line"


@pytest.mark.parametrize("planted", ["runs", "ledger.lock", "locks"])
def test_a_planted_directory_or_lock_symlink_is_refused(
    workdir: Path, planted: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "rb", RUNBOOK)
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    (workdir / "state").mkdir()
    (workdir / "state" / planted).symlink_to(elsewhere)
    assert main(["run", "rb"]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == []


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_modes_hold_under_umask_000(workdir: Path, umask_000: None) -> None:
    write_runbook(workdir, "rb", RUNBOOK)
    (workdir / "plans").mkdir()
    assert main(["plan", "rb", "-o", str(workdir / "plans" / "p.json")]) == 0
    assert main(["run", "rb"]) == 0
    state = workdir / "state"
    (log,) = (state / "runs").glob("*.jsonl")
    assert main(["audit", "export", log.stem, "--format", "md", "-o", str(workdir / "r.md")]) == 0
    for d in (state / "runs", state / "locks"):
        assert mode(d) == 0o700, d
    for f in (log, state / "ledger.jsonl", state / "ledger.lock", workdir / "plans" / "p.json"):
        assert mode(f) == 0o600, f
    assert mode(workdir / "r.md") == 0o644
