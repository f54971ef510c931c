"""`shell:` names the shell that runs a `run:` command (default sh: /bin/sh, as before): bash
syntax (`source`, arrays, `[[ ]]`) works in a `shell: bash` step, check and rollback, locally,
under sudo and (test_ssh_executor.py) over SSH; the shell is shown in the plan, recorded in the
log, and a host without it says so (exit 127). Real processes, real sudo."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import alive, run_events, write_runbook

from runner.cli import main
from runner.execution.executors.base import CommandRequest, CommandResult
from runner.execution.executors.local import LocalExecutor

# bash only: under dash `source` is not found, and arrays and `[[ ]]` are syntax errors
BASH_ONLY = (
    "source ./activate\n"
    "arr=(one two three)\n"
    "[[ $MARK == act* && ${arr[2]} == three ]] || exit 9\n"
    'echo "MARK=$MARK ${arr[1]}"\n'
)


def block(text: str, indent: int) -> str:
    return "\n".join(" " * indent + line for line in text.splitlines())


def local(request: CommandRequest) -> CommandResult:
    return asyncio.run(LocalExecutor().run(request, lambda s, b: None))


def test_a_bash_step_check_and_rollback_run_under_bash(workdir: Path) -> None:
    (workdir / "activate").write_text("MARK=activated\n")
    write_runbook(
        workdir,
        "venv",
        f"""
runbook: venv
steps:
  - id: use
    shell: bash
    run: |
{block(BASH_ONLY + 'echo "$MARK" > used', 6)}
    verify:
      - shell: bash
        run: "[[ $(cat used) == activated ]]"
  - id: plain
    run: echo sh > plain
    rollback:
      - shell: bash
        run: |
{block(BASH_ONLY + 'echo "$MARK" > undone', 10)}
  - id: fail
    run: exit 1
""",
    )
    assert main(["run", "venv"]) == 1  # `fail` fails: `plain` is rolled back, under bash
    assert (workdir / "used").read_text() == "activated\n"
    assert (workdir / "undone").read_text() == "activated\n"
    events = run_events(workdir / "state")
    shells = {
        (e["event"], e["step"]): e.get("shell")
        for e in events
        if e["event"] in ("step.started", "rollback.started")
    }
    assert shells == {
        ("step.started", "use"): "bash",
        ("step.started", "plain"): None,  # sh is the default, not recorded
        ("step.started", "fail"): None,
        ("rollback.started", "plain"): "bash",
    }
    (check,) = [e for e in events if e["event"] == "check"]  # a check's one record
    assert check["ok"] and check["shell"] == "bash"


def test_sh_stays_dash_like_bin_sh(workdir: Path) -> None:
    """Without `shell:` (or with `shell: sh`) the command runs under /bin/sh, as before."""
    write_runbook(
        workdir,
        "posix",
        "runbook: posix\nsteps:\n"
        "  - {id: a, run: 'echo $0 > a'}\n"
        "  - {id: b, shell: sh, run: 'echo $0 > b'}\n",
    )
    assert main(["run", "posix"]) == 0
    assert (workdir / "a").read_text() == (workdir / "b").read_text() == "/bin/sh\n"


def test_a_bash_command_locally_and_its_timeout_kills_the_group(tmp_path: Path) -> None:
    (tmp_path / "activate").write_text("MARK=activated\n")
    ok = local(CommandRequest(BASH_ONLY, cwd=str(tmp_path), shell="bash"))
    assert (ok.exit, ok.stdout.text, ok.stderr.text) == (0, "MARK=activated two\n", "")
    # exec: bash is the process the executor started, so a timeout reaches it and its children
    pidfile = tmp_path / "pid"
    start = time.monotonic()
    late = local(
        CommandRequest(
            f"trap '' TERM; sleep 60 & echo $! > {pidfile}; wait", shell="bash", timeout=0.5
        )
    )
    assert late.timed_out and time.monotonic() - start < 5
    pid, deadline = int(pidfile.read_text()), time.monotonic() + 2
    while alive(pid) and time.monotonic() < deadline:  # a SIGKILL takes a moment to land
        time.sleep(0.01)
    assert not alive(pid)


@pytest.mark.skipif(shutil.which("sudo") is None or os.geteuid() != 0, reason="needs root, sudo")
def test_a_bash_step_under_sudo_runs_as_the_sudo_user(workdir: Path) -> None:
    where = Path("/tmp") / f"rb-shell-{os.getpid()}"
    where.mkdir(mode=0o777, exist_ok=True)
    where.chmod(0o777)
    try:
        (where / "activate").write_text("MARK=activated\n")
        result = local(
            CommandRequest(
                BASH_ONLY + 'echo "$(id -un) $BASH_VERSION" >&2',
                cwd=str(where),
                sudo="nobody",
                shell="bash",
            )
        )
        assert result.exit == 0, result.stderr.text
        assert result.stdout.text == "MARK=activated two\n"
        assert result.stderr.text.startswith("nobody 5.")
    finally:
        shutil.rmtree(where, ignore_errors=True)


def test_a_host_without_the_shell_says_so(tmp_path: Path) -> None:
    """`command -v` is looked up on the command's PATH: here, one where no bash is."""
    result = local(CommandRequest("echo never", env={"PATH": str(tmp_path)}, shell="bash"))
    assert result.exit == 127 and result.stdout.text == ""
    assert result.stderr.text == "runbook: this step needs bash, not found on this host\n"


@pytest.mark.skipif(shutil.which("ksh") is not None, reason="ksh is installed here")
def test_a_ksh_step_where_ksh_is_missing_fails_with_127(workdir: Path) -> None:
    write_runbook(
        workdir, "korn", "runbook: korn\nsteps:\n  - {id: a, shell: ksh, run: touch ran}\n"
    )
    assert main(["run", "korn"]) == 1
    assert not (workdir / "ran").exists()
    finished = next(e for e in run_events(workdir / "state") if e["event"] == "step.finished")
    assert finished["exit"] == 127
    assert "this step needs ksh, not found on this host" in json.dumps(finished["stderr"])


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_a_zsh_step_runs_under_zsh(tmp_path: Path) -> None:
    result = local(CommandRequest('echo "$ZSH_NAME ${${:-abc}[2]}"', shell="zsh"))
    assert (result.exit, result.stdout.text) == (0, "zsh b\n"), result.stderr.text


def test_the_plan_and_show_name_the_shell(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(
        workdir,
        "shown",
        "runbook: shown\n"
        "preconditions:\n  - {shell: bash, run: '[[ -d / ]]'}\n"
        "steps:\n"
        "  - id: a\n    shell: bash\n    run: 'source ./env'\n"
        "    verify: [{shell: zsh, run: 'true'}]\n"
        "  - id: b\n    run: 'true'\n",
    )
    assert main(["plan", "shown", "--format", "json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["preconditions"]["local"] == [{"run": "[[ -d / ]]", "shell": "bash"}]
    a, b = view["hosts"]["local"]
    assert (a["run"], a["shell"], a["verify"]) == (
        "source ./env",
        "bash",
        [{"run": "true", "shell": "zsh"}],
    )
    assert "shell" not in b  # sh: the plan of a runbook without `shell:` is as it was
    assert main(["plan", "shown"]) == 0
    text = capsys.readouterr().out
    assert "precondition (bash): [[ -d / ]]" in text
    assert "    run (bash): source ./env\n    verify (run, zsh): true\n" in text
    assert "  b: will-run\n    run: true" in text
    assert main(["show", "shown", "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert "```bash\nsource ./env\n```" in md and "```sh\ntrue\n```" in md


def test_a_checklist_check_runs_under_its_shell(workdir: Path) -> None:
    (workdir / "checklists").mkdir()
    (workdir / "checklists" / "venv.yaml").write_text(
        "checklist: venv\nperiod: daily\nitems:\n"
        "  - id: bash\n    title: Under bash\n"
        "    check: {shell: bash, run: '[[ -n $BASH_VERSION ]] && arr=(a) && echo ${arr[0]}'}\n"
    )
    assert main(["checklist", "start", "venv", "--period", "2026-11-24"]) == 0
    assert main(["checklist", "run", "venv", "--period", "2026-11-24", "--by", "alice"]) == 0
