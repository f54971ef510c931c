"""Shared fixtures. Tests call `main([...])` in-process and talk to real processes and files."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
pytest_plugins = [
    "sshd_fixture",
    "demo_target",
    "people",
    "rsyslog_fixture",
    "prod_host",
    "pager",
    "slow_server",
]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch project: ./runbooks, a state dir, cwd set to it."""
    (tmp_path / "runbooks").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNBOOK_PATH", raising=False)
    monkeypatch.setenv("RUNBOOK_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def alive(pid: int) -> bool:
    """Running, not a zombie (a container's init may never reap orphans)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone before, or while, it was read
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def running(marker: str) -> list[int]:
    """Live processes whose arguments hold `marker` (a sleep no other process runs)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return [pid for pid in found if alive(pid)]


def run_events(state: Path) -> list[dict[str, Any]]:
    """The records of the one run log under a state dir."""
    (log,) = sorted((state / "runs").glob("*.jsonl"))
    return [json.loads(line) for line in log.read_text().splitlines()]


def write_runbook(root: Path, name: str, text: str) -> Path:
    path = root / "runbooks" / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def no_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("runner.console.interactive", lambda: False)


os.environ.setdefault("NO_COLOR", "1")
# the start-up cache (runner/format/diskcache.py) of the runs the tests make goes to a scratch dir,
# not the user's ~/.cache; tests of the cache itself point XDG_CACHE_HOME at their own dirs
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="runbook-test-cache-")


def io_so_far(field: str) -> int:
    """This process's I/O so far, as the kernel counts it (/proc/self/io): `rchar` bytes read,
    `syscr` read calls. Tests of what a command reads use it, not a clock."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/io")
