"""Issue 18, smaller cases: terminal escapes from command output never reach the auditor's
terminal, nor the operator's during the run; a file that is not UTF-8 is reported at line:col
(real CLI, real files)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
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


# A window title (OSC 0), clear-screen, a clipboard write (OSC 52), a CSI as one C1 byte: on
# stdout and on stderr; and a param holding an escape, shown in the command line and its output.
LIVE = "runbook: live\nparams: {v: {type: string}}\nsteps:\n  - {id: a, run: 'sh out.sh; echo {{ v }}'}\n"
HOSTILE = (
    "printf 'a\\033]0;PWNED\\033\\\\b\\033[2Jc\\033]52;c;ZXZpbA==\\007d\\302\\233e\\n'\n"
    "printf 'f\\033]52;c;ZXZpbA==\\007g\\n' >&2\n"
)
TITLE = "\x1b]0;PARAM\x07"


def assert_live_inert(text: str) -> None:
    for bad in ("\x1b]0;", "\x1b]52", "\x1b[2J", "\x07", "\x9b"):
        assert bad not in text, (bad, text)
    for shown in ("\\x1b]0;PWNED", "\\x1b[2J", "\\x1b]52;c;ZXZpbA==\\x07", "\\x1b]0;PARAM"):
        assert shown in text, (shown, text)


def test_live_output_is_neutralised_without_a_terminal(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "out.sh").write_text(HOSTILE)
    write_runbook(workdir, "live", LIVE)
    assert main(["run", "live", "-p", f"v={TITLE}"]) == 0
    seen = capsys.readouterr()
    assert_live_inert(seen.out)
    assert "\\x1b]52;c;ZXZpbA==\\x07g" in seen.err  # the step's stderr, on ours
    assert "\r" not in seen.out + seen.err and "\x1b" not in seen.err


def at_a_terminal(workdir: Path, *args: str) -> str:
    """What `runbook ARGS` printed at a pseudo-terminal (rich's path), once it exited 0."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=workdir,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "NO_COLOR": "1", "TERM": "xterm-256color"},
        start_new_session=True,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.1)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(timeout=5) == 0, seen
    return seen.decode(errors="replace")


def test_live_output_is_neutralised_at_a_terminal(workdir: Path) -> None:
    """The operator's terminal: what a host printed cannot set its title, clear it or write its
    clipboard."""
    (workdir / "out.sh").write_text(HOSTILE)
    write_runbook(workdir, "live", LIVE)
    assert_live_inert(at_a_terminal(workdir, "run", "live", "-p", f"v={TITLE}", "--yes"))


def test_emoji_codes_in_output_stay_text_at_a_terminal(workdir: Path) -> None:
    """rich turned `:white_check_mark:` into ✅: a host could draw the runner's own marks."""
    write_runbook(
        workdir,
        "emoji",
        "runbook: emoji\nsteps:\n  - {id: a, run: 'echo :white_check_mark: done'}\n",
    )
    seen = at_a_terminal(workdir, "run", "emoji", "--yes")
    assert ":white_check_mark: done" in seen and "\u2705" not in seen, seen


def test_plan_and_plan_show_neutralise_terminal_escapes(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A saved plan may come from someone else (a shared review dir): `plan show` printed its
    commands and params with their escape sequences."""
    write_runbook(workdir, "live", LIVE)
    assert main(["plan", "live", "-p", f"v={TITLE}", "-o", "p.json"]) == 0
    for fmt in ("text", "md"):
        assert main(["plan", "show", "p.json", "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out, out
    assert out.count("\\x1b]0;PARAM\\x07") == 6, out  # params and command, in each of 3


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
