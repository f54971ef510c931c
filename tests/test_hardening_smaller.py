"""Issue 18, smaller cases: terminal escapes from command output never reach the auditor's
terminal, a file that is not UTF-8 is reported at line:col (real CLI, real files)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_runbook

from runner.cli import main

ESCAPES = "printf 'a\\033[2Jb\\033]52;c;ZXZpbA==\\007c\\rd\\302\\233e\\n'"


@pytest.fixture
def escaped_run(workdir: Path) -> str:
    (workdir / "out.sh").write_text(ESCAPES + "\n")  # what a hostile host's command prints
    write_runbook(workdir, "esc", "runbook: esc\nsteps:\n  - {id: a, run: sh out.sh}\n")
    assert main(["run", "esc", "--quiet"]) == 0
    (log,) = (workdir / "state" / "runs").glob("*.jsonl")
    return log.stem


def assert_inert(text: str, *, shown: bool = True) -> None:
    for bad in ("\x1b", "\x07", "\r", "\x9b"):
        assert bad not in text, repr(bad)
    if shown:  # the output excerpt is there, made visible
        assert "\\x1b[2J" in text or "\\u001b[2J" in text


def test_audit_show_neutralises_terminal_escapes(
    escaped_run: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["audit", "show", escaped_run]) == 0
    assert_inert(capsys.readouterr().out)


@pytest.mark.parametrize("fmt", ["md", "html", "json", "csv"])
def test_exports_neutralise_terminal_escapes(
    escaped_run: str, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["audit", "export", escaped_run, "--format", fmt]) == 0
    assert_inert(capsys.readouterr().out, shown=fmt != "csv")  # csv has no output column


def test_a_file_that_is_not_utf8_is_reported_at_line_and_column(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_runbook(workdir, "latin", "x")
    path.write_bytes(b'runbook: latin\nsteps:\n  - {id: a, run: "echo caf\xe9"}\n')
    assert main(["validate"]) == 2
    err = capsys.readouterr().err
    assert "runbooks/latin.yaml:3:27: not UTF-8 text: byte 0xe9" in err, err


def test_sudo_user_is_rendered(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_runbook(
        workdir,
        "su",
        "runbook: su\nparams: {who: {type: string, default: nobody}}\nsteps:\n"
        "  - id: a\n    run: id -un\n    sudo: '{{ who }}'\n    expect: {stdout_contains: nobody}\n",
    )
    assert main(["run", "su"]) == 0, capsys.readouterr()


def test_arg_refuses_a_value_read_as_an_option_before_anything_runs(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(
        workdir,
        "tarball",
        "runbook: tarball\nparams: {v: {type: string, required: true}}\nsteps:\n"
        "  - {id: first, run: touch ran}\n  - {id: pack, run: 'tar -cf x.tar {{ v | arg }}'}\n",
    )
    evil = "--use-compress-program=touch pwned"
    assert main(["run", "tarball", "-p", f"v={evil}"]) == 2
    assert "would read it as an option" in capsys.readouterr().err
    assert not (workdir / "ran").exists() and not (workdir / "pwned").exists()
    (workdir / "f").write_text("x")
    assert main(["run", "tarball", "-p", "v=f"]) == 0  # an ordinary operand goes through


def test_shipped_runbooks_pass_operands_through_arg() -> None:
    shipped = Path(__file__).resolve().parent.parent / "runbooks"
    backup = (shipped / "backup.yaml").read_text()
    assert "rm -f {{ archive | arg }}" in backup
    # the RPC host comes from the bot's .env (issue 13), so it is guarded by `--`, not `| arg`
    assert 'traceroute -n -w 2 -m 15 -- "$rpc_host"' in (shipped / "diagnostics.yaml").read_text()
