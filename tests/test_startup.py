"""Start-up and exit shortcuts: the argument tree built only for the subcommand given, asyncssh
imported without its liboqs probe when liboqs is certainly absent, and the command's exit without
the interpreter's teardown. Each is checked to change nothing a user can see."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_runbook

from runner import cli

# every command of the table (cli_table.py), so that a new row is checked too
COMMANDS = tuple(c.words[0] for c in cli.COMMANDS if len(c.words) == 1)


def python(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_help_lists_the_same_commands_as_the_full_tree() -> None:
    assert cli._parser([]).format_help() == cli._parser(COMMANDS).format_help()


@pytest.mark.parametrize("command", COMMANDS)
def test_the_subcommand_given_is_complete(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    lazy = capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli._parser(COMMANDS).parse_args([command, "--help"])
    assert lazy == capsys.readouterr().out


def test_subcommands_are_not_abbreviated(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["valid"])
    assert exc.value.code == 2
    assert "invalid choice: 'valid'" in capsys.readouterr().err


def test_only_checklist_commands_import_the_checklist_module(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom runner.cli import main\n"
        "main(sys.argv[1:])\nprint('runner.commands.checklist' in sys.modules)\n"
    )
    for args, imported in ((["list"], "False"), (["checklist", "status", "x"], "True")):
        result = subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=tmp_path,
            env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.stdout.split()[-1] == imported, result.stderr


# Records every name that reaches ctypes' real find_library, then imports asyncssh our way.
RECORD = """
import ctypes.util, sys
real = ctypes.util.find_library
asked = []
def recording(name):
    asked.append(name)
    return real(name)
ctypes.util.find_library = recording
from runner.execution.executors._asyncssh_import import asyncssh
from asyncssh.kex import get_kex_algs
print("asked:", " ".join(asked))
print("restored:", ctypes.util.find_library is recording)
print("kex:", b",".join(get_kex_algs()).decode())
"""

PLAIN = """
import asyncssh
from asyncssh.kex import get_kex_algs
print("kex:", b",".join(get_kex_algs()).decode())
"""


def _liboqs_installed() -> bool:
    import ctypes.util

    return any(ctypes.util.find_library(n) for n in ("oqs", "liboqs"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the shortcut is Linux-only")
@pytest.mark.skipif(_liboqs_installed(), reason="liboqs is installed here")
def test_asyncssh_offers_the_same_algorithms_without_the_probe(tmp_path: Path) -> None:
    env = {"LD_LIBRARY_PATH": "", "LIBRARY_PATH": ""}
    ours = python(RECORD, **env).splitlines()
    asked = ours[0].split()[1:]
    assert "oqs" not in asked
    assert "liboqs" not in asked
    assert "nettle" in asked  # other libraries are still looked up for real
    assert ours[1] == "restored: True"
    assert ours[2] == python(PLAIN, **env).strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the shortcut is Linux-only")
def test_any_sign_of_liboqs_means_the_real_probe(tmp_path: Path) -> None:
    # a file named like the library in a directory the probe would search: not "certainly absent"
    (tmp_path / "liboqs.so.0").write_bytes(b"not really a library")
    ours = python(RECORD, LD_LIBRARY_PATH=str(tmp_path)).splitlines()
    assert "oqs" in ours[0].split()[1:]


def test_the_command_exits_with_its_code_and_all_its_output(workdir: Path) -> None:
    """`runbook` leaves by os._exit: buffered output must still arrive, and the exit code too."""
    many = "".join(f"  - {{id: s{i}, run: echo line-{i}}}\n" for i in range(300))
    write_runbook(workdir, "many", f"runbook: many\nsteps:\n{many}")
    write_runbook(workdir, "fails", "runbook: fails\nsteps: [{id: a, run: 'exit 3'}]\n")

    def runbook(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runner", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    ok = runbook("run", "many")
    assert ok.returncode == 0
    assert [ln for ln in ok.stdout.splitlines() if "line-" in ln][-1].endswith("line-299")
    assert "succeeded (exit 0)" in ok.stdout and "audit log:" in ok.stderr
    assert runbook("run", "fails").returncode == 1
    bad = runbook("run", "nope")
    assert bad.returncode == 2 and "nope" in bad.stderr
    records = list((workdir / "state" / "runs").glob("*.jsonl"))
    assert len(records) == 2 and cli.main(["audit", "verify"]) == 0
