"""The start-up cache (runner/format/diskcache.py): a file that passed the schema before is not checked
against it (nor is jsonschema imported) again, and nothing invalid or altered gets by. Only the
fact of a pass is stored, never a file's content.

Most checks run `runbook` in a fresh interpreter (what an operator gets), with the cache under
the test's own directory (XDG_CACHE_HOME), and look at what that process imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_runbook

# Runs the CLI like the `runbook` script does, then says what it imported.
PROBE = (
    "import sys\n"
    "from runner.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "print('jsonschema imported:', 'jsonschema' in sys.modules)\n"
    "sys.exit(rc)\n"
)

VALID = """\
runbook: deploy
params:
  version: {type: string, default: "1.0"}
steps:
  - id: fetch
    run: echo fetching {{ version }}
  - id: install
    run: echo installing
"""

# the same runbook after an edit: `run:` of the second step is now a number (schema error)
INVALID = VALID.replace("run: echo installing", "run: 42")

INVENTORY = """\
hosts:
  local: {connection: local, vars: {region: eu}}
"""


@pytest.fixture
def cache_home(workdir: Path) -> Path:
    return workdir / "cache-home"


def runbook(
    workdir: Path, cache_home: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "RUNBOOK_NO_CACHE"}
    environ.update(XDG_CACHE_HOME=str(cache_home), **env)
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=workdir,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def entries(cache_home: Path, area: str = "validated") -> list[Path]:
    folder = cache_home / "runbook" / area
    return (
        sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []
    )


def test_a_second_load_of_a_valid_file_skips_jsonschema(workdir: Path, cache_home: Path) -> None:
    write_runbook(workdir, "deploy", VALID)
    (workdir / "inv.yaml").write_text(INVENTORY)

    first = runbook(workdir, cache_home, "validate", "deploy", "-i", "inv.yaml")
    assert first.returncode == 0, first.stderr
    assert "jsonschema imported: True" in first.stdout
    assert len(entries(cache_home)) == 2  # the runbook and the inventory
    for entry in (cache_home / "runbook").rglob("*"):  # a pass is recorded, not the content
        assert not entry.is_file() or b"region" not in entry.read_bytes()

    second = runbook(workdir, cache_home, "validate", "deploy", "-i", "inv.yaml")
    assert second.returncode == 0, second.stderr
    assert "ok  runbooks/deploy.yaml" in second.stdout
    assert "jsonschema imported: False" in second.stdout

    # `run` goes through the same loader
    ran = runbook(workdir, cache_home, "run", "deploy", "-i", "inv.yaml", "--quiet")
    assert ran.returncode == 0, ran.stderr
    assert "jsonschema imported: False" in ran.stdout


def test_an_edited_invalid_file_is_rejected_with_its_position(
    workdir: Path, cache_home: Path
) -> None:
    path = write_runbook(workdir, "deploy", VALID)
    assert runbook(workdir, cache_home, "validate", "deploy").returncode == 0
    assert len(entries(cache_home)) == 1

    path.write_text(INVALID)
    cached = runbook(workdir, cache_home, "validate", "deploy")
    assert cached.returncode == 2
    assert "runbooks/deploy.yaml:8:10: steps[1].run: expected a string, got a number" in (
        cached.stderr
    )
    assert "jsonschema imported: True" in cached.stdout
    # exactly what a run without any cache reports, and nothing was added for the invalid file
    uncached = runbook(workdir, cache_home, "validate", "deploy", RUNBOOK_NO_CACHE="1")
    assert (uncached.returncode, uncached.stderr) == (2, cached.stderr)
    assert len(entries(cache_home)) == 1

    ran = runbook(workdir, cache_home, "run", "deploy", "--quiet")
    assert ran.returncode == 2
    assert "runbooks/deploy.yaml:8:10: steps[1].run" in ran.stderr
    assert not (workdir / "state" / "runs").exists() or not any(
        (workdir / "state" / "runs").iterdir()
    )


def test_garbage_in_the_cache_means_a_full_check(workdir: Path, cache_home: Path) -> None:
    write_runbook(workdir, "deploy", VALID)
    assert runbook(workdir, cache_home, "validate", "deploy").returncode == 0
    [entry] = entries(cache_home)
    for garbage in (
        b"",
        b"\xff\xfe not even UTF-8",
        entry.read_bytes().replace(b"runbook-cache v1", b"runbook-cache v0"),
        entry.read_bytes() + b"more",  # the payload no longer matches its SHA-256
        entry.read_bytes()[:-10],  # truncated
    ):
        entry.write_bytes(garbage)
        result = runbook(workdir, cache_home, "validate", "deploy")
        assert result.returncode == 0, result.stderr
        assert "jsonschema imported: True" in result.stdout  # not taken as a pass
    # the full check wrote a good entry back: the next load is a hit again
    assert "jsonschema imported: False" in runbook(workdir, cache_home, "validate", "deploy").stdout

    entry.unlink()
    entry.mkdir()  # an entry that cannot be read at all
    result = runbook(workdir, cache_home, "validate", "deploy")
    assert result.returncode == 0, result.stderr
    assert "jsonschema imported: True" in result.stdout


def test_an_unusable_cache_dir_is_no_error(workdir: Path) -> None:
    write_runbook(workdir, "deploy", VALID)
    blocked = workdir / "not-a-dir"
    blocked.write_text("a file where the cache directory would go\n")
    for _ in range(2):
        result = runbook(workdir, blocked, "validate", "deploy")
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert "jsonschema imported: True" in result.stdout


def test_runbook_no_cache_neither_reads_nor_writes(workdir: Path, cache_home: Path) -> None:
    write_runbook(workdir, "deploy", VALID)
    for _ in range(2):
        result = runbook(workdir, cache_home, "validate", "deploy", RUNBOOK_NO_CACHE="1")
        assert result.returncode == 0, result.stderr
        assert "jsonschema imported: True" in result.stdout
    assert not cache_home.exists()

    assert runbook(workdir, cache_home, "validate", "deploy").returncode == 0
    assert len(entries(cache_home)) == 1
    result = runbook(workdir, cache_home, "validate", "deploy", RUNBOOK_NO_CACHE="1")
    assert "jsonschema imported: True" in result.stdout  # an existing entry is not read either
    result = runbook(workdir, cache_home, "validate", "deploy", RUNBOOK_NO_CACHE="0")
    assert "jsonschema imported: False" in result.stdout  # "0" means: cache on


def test_a_pass_counts_only_for_the_kind_it_was_checked_as(
    workdir: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.format import schema
    from runner.format.source import load_text

    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    monkeypatch.delenv("RUNBOOK_NO_CACHE", raising=False)
    doc = load_text(INVENTORY, "inv.yaml")
    assert schema.validate(doc, "inventory") == []
    assert len(entries(cache_home)) == 1
    # the same text as a runbook: not a hit, and checked in full
    assert [p.message for p in schema.validate(doc, "runbook")][:1] == [
        "missing required key 'runbook'"
    ]
    assert len(entries(cache_home)) == 1


def test_the_cache_stays_small(
    workdir: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.format import diskcache, schema
    from runner.format.source import load_text

    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    monkeypatch.delenv("RUNBOOK_NO_CACHE", raising=False)
    monkeypatch.setattr(diskcache, "MAX_ENTRIES", 10)
    for n in range(25):
        doc = load_text(f"hosts:\n  h{n}: {{address: 10.0.0.{n}}}\n", "inv.yaml")
        assert schema.validate(doc, "inventory") == []
        assert len(entries(cache_home)) <= 10
    assert len(entries(cache_home)) >= 5


def test_a_yaml_error_is_reported_in_full_every_time(workdir: Path, cache_home: Path) -> None:
    write_runbook(workdir, "broken", "runbook: broken\nsteps:\n  - id: a\n    run: [unclosed\n")
    results = [runbook(workdir, cache_home, "validate", "broken") for _ in range(2)]
    assert {r.returncode for r in results} == {2}
    assert results[0].stderr == results[1].stderr
    assert "runbooks/broken.yaml:5:1: YAML syntax error" in results[0].stderr
    assert entries(cache_home) == []
