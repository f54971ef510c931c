"""A command's text never appears in a process's arguments. /proc/PID/cmdline (what `ps` shows)
is readable by every user of the machine, and the rendered text holds the values of secret
params and of the step's env; the environment is readable only by the process's own user and
root. So each path hands `/bin/sh` the text in its environment, or through a pipe into sudo:
locally, through the SSH helper, and over a channel per command, with and without sudo. Real
processes, a real sshd (both SSH paths, tests/sshd_fixture.py) and real sudo."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, run_events, write_runbook
from sshd_fixture import SSHServer
from test_ssh_executor import arun, executor

from runner.execution.executors.base import CommandRequest, CommandResult, Runner
from runner.execution.executors.local import LocalExecutor


def argv_holding(text: str) -> list[str]:
    """Every live process whose arguments hold `text`, as `ps` would show it."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            data = cmdline.read_bytes()
        except OSError:
            continue
        if text.encode() in data and int(cmdline.parent.name) != os.getpid():
            shown = data.replace(b"\0", b" ")[:300]
            found.append(f"{cmdline.parent.name}: {shown!r}")
    return found


@pytest.fixture
def d() -> Iterator[Path]:
    """A directory any user may reach and write: the command may run as another user (sudo),
    and pytest's own temp dirs are root's alone."""
    where = Path(tempfile.mkdtemp(prefix="rb-argv-", dir="/tmp"))
    where.chmod(0o777)
    yield where
    shutil.rmtree(where, ignore_errors=True)


async def watched(ex: Runner, request: CommandRequest, d: Path) -> tuple[CommandResult, list[str]]:
    """Run `request` (which writes d/started, then waits for d/go); while it waits, look for the
    secret in every process's arguments."""
    task = asyncio.ensure_future(ex.run(request, lambda s, b: None))
    try:
        deadline = time.monotonic() + 15
        while not (d / "started").exists() and time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.02)
        seen = argv_holding(SECRET)
        (d / "go").touch()
        return await task, seen
    finally:
        await ex.close()


SECRET = f"s3cr3t-{secrets.token_hex(8)}"


def request_for(d: Path, sudo: str | None = None, shell: str = "sh") -> CommandRequest:
    """The secret in the text and in the step's env; both must reach the command. Under
    `shell: bash` (which sh hands the text on to, in its environment too), a bash-only test
    first: it fails unless bash runs the text."""
    command = (
        ("[[ -n $BASH_VERSION ]] || exit 9; " if shell == "bash" else "")
        + f"printf '%s %s' '{SECRET}' \"$TOKEN\" > {d}/seen; touch {d}/started; "
        f"while [ ! -e {d}/go ]; do sleep 0.02; done"
    )
    return CommandRequest(command, env={"TOKEN": SECRET}, sudo=sudo, timeout=20, shell=shell)


def check(d: Path, result: CommandResult, seen: list[str]) -> None:
    assert result.exit == 0, (result.error, result.stderr)
    assert (d / "seen").read_text() == f"{SECRET} {SECRET}"
    assert seen == [], "the secret is in these processes' arguments:\n" + "\n".join(seen)


SHELLS = pytest.mark.parametrize("shell", ["sh", "bash"])


@SHELLS
def test_local(d: Path, shell: str) -> None:
    check(d, *arun(watched(LocalExecutor(), request_for(d, shell=shell), d)))


@SHELLS
@pytest.mark.skipif(shutil.which("sudo") is None or os.geteuid() != 0, reason="needs root, sudo")
def test_local_sudo(d: Path, shell: str) -> None:
    check(d, *arun(watched(LocalExecutor(), request_for(d, sudo="nobody", shell=shell), d)))


@SHELLS
@pytest.mark.ssh
def test_ssh(sshd: SSHServer, d: Path, shell: str) -> None:
    check(d, *arun(watched(executor(sshd), request_for(d, shell=shell), d)))


@SHELLS
@pytest.mark.ssh
def test_ssh_sudo(sshd: SSHServer, sudo_login: str, d: Path, shell: str) -> None:
    """A non-root SSH user whose command runs as root through sudo."""
    request = request_for(d, sudo="root", shell=shell)
    check(d, *arun(watched(executor(sshd, user=sudo_login), request, d)))


@SHELLS
def test_a_secret_param_stays_out_of_ps(workdir: Path, d: Path, shell: str) -> None:
    """The whole way, as an operator runs it: a secret param given in the environment (not on the
    runner's own command line), rendered into a step's command."""
    write_runbook(
        workdir,
        "uses-secret",
        "runbook: uses-secret\n"
        "params: {token: {type: string, secret: true, required: true}}\n"
        "steps:\n"
        f"  - id: use\n    shell: {shell}\n"
        f"    run: printf %s {{{{ token }}}} > {d}/seen; sleep 0.5\n",
    )
    env = {**os.environ, "RUNBOOK_PARAM_TOKEN": SECRET}
    runner = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", "uses-secret", "--quiet"], cwd=workdir, env=env
    )
    seen: list[str] = []
    while runner.poll() is None:
        seen += argv_holding(SECRET)
        time.sleep(0.002)
    assert runner.returncode == 0
    assert (d / "seen").read_text() == SECRET
    assert seen == [], "the secret is in these processes' arguments:\n" + "\n".join(seen)
    finished = [r for r in run_events(workdir / "state") if r["event"] == "step.finished"]
    assert SECRET not in str(finished) and "***" in finished[0]["command"]


def test_the_runners_own_secrets_stay_out_of_commands_environments(workdir: Path, d: Path) -> None:
    """RUNBOOK_SIGNING_KEY may hold the audit key's PEM itself, and RUNBOOK_PARAM_<NAME> a secret
    param: they configure the runner. A command inheriting them could sign a forged audit log,
    or read secrets its step never used. The run is still signed with that key."""
    keys = workdir / "keys"
    assert (
        subprocess.run(
            [sys.executable, "-m", "runner", "audit", "keygen", "--out", str(keys / "audit")],
            cwd=workdir,
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    pem = (keys / "audit").read_text()
    write_runbook(
        workdir,
        "env-dump",
        "runbook: env-dump\n"
        "params: {token: {type: string, secret: true, required: true}}\n"
        f"steps:\n  - id: dump\n    run: env > {d}/env\n",
    )
    env = {**os.environ, "RUNBOOK_PARAM_TOKEN": SECRET, "RUNBOOK_SIGNING_KEY": pem}
    done = subprocess.run(
        [sys.executable, "-m", "runner", "run", "env-dump", "--quiet"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = (d / "env").read_text()
    assert "RUNBOOK_SIGNING_KEY" not in seen and "PRIVATE KEY" not in seen
    assert "RUNBOOK_PARAM_TOKEN" not in seen and SECRET not in seen
    assert "PATH=" in seen  # the rest of the environment is passed on
    events = [r["event"] for r in run_events(workdir / "state")]
    assert events[-1] == "run.signature"


def test_an_inventory_script_does_not_get_the_runners_secrets(
    workdir: Path, d: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An executable inventory (Ansible's dynamic inventory) is a program the runner starts too."""
    from runner.format import inventory

    script = workdir / "inventory.sh"
    script.write_text(f'#!/bin/sh\nenv > {d}/env\necho \'{{"web": ["w1"]}}\'\n')
    script.chmod(0o755)
    monkeypatch.setenv("RUNBOOK_SIGNING_KEY", "-----BEGIN PRIVATE KEY-----\nnot-a-real-key")
    monkeypatch.setenv("RUNBOOK_PARAM_TOKEN", SECRET)
    assert [h.name for h in inventory.load(str(script)).hosts] == ["w1"]
    seen = (d / "env").read_text()
    assert "PRIVATE KEY" not in seen and SECRET not in seen and "PATH=" in seen


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None, reason="needs root")
def test_a_command_cannot_read_the_runners_environment(d: Path) -> None:
    """A command runs as the runner's own user, who may read any of their processes'
    /proc/PID/environ, the runner's included, where secret params given in the environment and
    the PEM of the signing key are. The runner makes itself non-dumpable (as ssh-agent does), so
    only root can. Run as an unprivileged user (nobody), with the host's Python and this checkout
    (as tests/test_cron_runs.py does), the runner's pyenv being root's alone."""
    import sysconfig

    state = d / "state"
    (d / "rb.yaml").write_text(
        "runbook: rb\n"
        "params: {token: {type: string, secret: true, required: true}}\n"
        "steps:\n"
        f"  - id: peek\n    run: cat /proc/$PPID/environ > {d}/stolen || echo refused > {d}/refused\n"
    )
    boot = (
        f"import sys; sys.path[:0] = [{str(REPO)!r}, {sysconfig.get_paths()['purelib']!r}]; "
        "from runner.__main__ import run; run()"
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(d),
        "RUNBOOK_PARAM_TOKEN": SECRET,
        "XDG_CACHE_HOME": str(d / "cache"),
    }
    runbook = ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", boot]
    done = subprocess.run(
        [*runbook, "--state-dir", str(state), "run", str(d / "rb.yaml"), "--quiet"],
        env=env,
        cwd=d,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    stolen = d / "stolen"
    assert SECRET not in (stolen.read_text(errors="replace") if stolen.exists() else "")
    assert (d / "refused").exists()
