"""SSHExecutor against a real OpenSSH server on loopback (tests/sshd_fixture.py); no mocks."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
import pytest
from sshd_fixture import SSHServer

from runner.execution.executors.base import CommandRequest, CommandResult, ConnectionFailed
from runner.execution.executors.ssh import SSHExecutor

T = TypeVar("T")

pytestmark = pytest.mark.ssh  # `-m "not ssh"` skips the file; it takes about 10 s


def arun(coro: Coroutine[Any, Any, T]) -> T:
    # a bug that hangs must fail the test, not the whole run
    return asyncio.run(asyncio.wait_for(coro, 30))


def executor(server: SSHServer, address: str | None = None, **kw: Any) -> SSHExecutor:
    settings: dict[str, Any] = {
        "name": "h1",
        "address": address or server.addresses[0],
        "port": server.port,
        "user": server.user,
        "key": server.client_key,
        "known_hosts": server.known_hosts,
        "connect_timeout": 5,
        **kw,
    }
    return SSHExecutor(**settings)


async def run_all(ex: SSHExecutor, *commands: str, **kw: Any) -> list[CommandResult]:
    try:
        return [await ex.run(CommandRequest(c, **kw), lambda s, b: None) for c in commands]
    finally:
        await ex.close()


def fingerprint(public_line: str) -> str:
    return str(asyncssh.import_public_key(public_line).get_fingerprint("sha256"))


def other_host_key() -> str:
    key = asyncssh.generate_private_key("ssh-ed25519")
    return " ".join(key.export_public_key().decode().split()[:2])


# --- running commands -----------------------------------------------------------------------


def test_output_and_exit_code(sshd: SSHServer) -> None:
    [ok, bad] = arun(run_all(executor(sshd), "echo hello", "echo oops >&2; exit 3"))
    assert (ok.exit, ok.stdout.text, ok.stderr.text, ok.timed_out) == (0, "hello\n", "", False)
    assert (bad.exit, bad.stdout.text, bad.stderr.text) == (3, "", "oops\n")
    assert ok.error == bad.error == ""


def test_output_is_streamed_as_it_arrives(sshd: SSHServer) -> None:
    chunks: list[tuple[str, bytes, float]] = []

    async def go() -> CommandResult:
        ex = executor(sshd)
        try:
            await ex.run(CommandRequest("true"), lambda s, b: None)  # connect outside the timing
            start = time.monotonic()
            result = await ex.run(
                CommandRequest("echo first; echo warn >&2; sleep 0.5; echo last"),
                lambda s, b: chunks.append((s, b, time.monotonic() - start)),
            )
        finally:
            await ex.close()
        return result

    result = arun(go())
    assert [(s, b) for s, b, _ in chunks] == [
        ("stdout", b"first\n"),
        ("stderr", b"warn\n"),
        ("stdout", b"last\n"),
    ]
    assert chunks[0][2] < 0.4 < chunks[2][2]  # the first line came before the sleep ended
    assert result.stdout.text == "first\nlast\n"
    assert result.stdout.size == 11 and result.stderr.text == "warn\n"


def test_env_cwd_and_binary_output(sshd: SSHServer) -> None:
    value = 'it\'s $HOME "quoted" `x` \\ ; newline\nend'
    [env, binary] = arun(
        run_all(
            executor(sshd),
            'printf %s "$V"; pwd',
            r"printf '\377\000\001'",
            env={"V": value},
            cwd="/tmp",
        )
    )
    assert env.stdout.text == value + "/tmp\n"
    assert binary.stdout.kept == b"\xff\x00\x01"


def test_failed_cd_guards_every_line_of_a_script(sshd: SSHServer) -> None:
    [result] = arun(
        run_all(executor(sshd), "echo line1\necho line2", cwd="/nonexistent-runner-dir")
    )
    assert result.exit != 0
    assert result.stdout.text == ""  # neither line ran in the wrong directory


def test_one_connection_reused(sshd: SSHServer) -> None:
    async def go() -> list[str]:
        ex = executor(sshd)
        try:
            # concurrent first commands share one connection (the lock), and so do later ones
            first = await asyncio.gather(
                *(
                    ex.run(CommandRequest("echo $SSH_CONNECTION"), lambda s, b: None)
                    for _ in range(5)
                )
            )
            later = [
                await ex.run(CommandRequest("echo $SSH_CONNECTION"), lambda s, b: None)
                for _ in range(20)
            ]
        finally:
            await ex.close()
        return [r.stdout.text for r in [*first, *later]]

    seen = arun(go())
    assert len(seen) == 25 and len(set(seen)) == 1, set(seen)
    assert seen[0].split()[2:] == [sshd.addresses[0], str(sshd.port)]


def test_root_sudo_as_root_needs_no_sudo(sshd: SSHServer) -> None:
    if sshd.user != "root":
        pytest.skip("the test sshd logs in as root only when the tests run as root")
    [result] = arun(run_all(executor(sshd), "id -un", sudo="root"))
    assert (result.exit, result.stdout.text) == (0, "root\n")


@pytest.mark.skipif(shutil.which("sudo") is None, reason="sudo is not installed")
def test_sudo_to_another_user(sshd: SSHServer) -> None:
    [result] = arun(run_all(executor(sshd), "id -un", sudo="nobody"))
    assert (result.exit, result.stdout.text) == (0, "nobody\n"), result.stderr.text


BASH_ONLY = (  # under dash: `source` not found, and arrays and `[[ ]]` are syntax errors
    "printf 'MARK=activated\\n' > /tmp/rb-shell-activate.$$; source /tmp/rb-shell-activate.$$\n"
    "rm -f /tmp/rb-shell-activate.$$; arr=(one two three)\n"
    "[[ $MARK == act* && ${arr[2]} == three ]] || exit 9\n"
    'echo "$MARK ${arr[1]} $(id -un)"\n'
)


def test_a_bash_command_runs_under_bash(sshd: SSHServer) -> None:
    [result] = arun(run_all(executor(sshd), BASH_ONLY, shell="bash", env={"X": "1"}, cwd="/"))
    assert (result.exit, result.stdout.text) == (0, f"activated two {sshd.user}\n"), result.stderr


@pytest.mark.skipif(shutil.which("sudo") is None, reason="sudo is not installed")
def test_a_bash_command_under_sudo_runs_as_the_sudo_user(sshd: SSHServer) -> None:
    [result] = arun(run_all(executor(sshd), BASH_ONLY, shell="bash", sudo="nobody"))
    assert (result.exit, result.stdout.text) == (0, "activated two nobody\n"), result.stderr


def test_a_bash_command_killed_at_its_timeout(sshd: SSHServer) -> None:
    """bash replaces the shell the command started as (exec): the group kill reaches it."""
    marker = "runner-timeout-probe-bash"
    start = time.monotonic()
    command = f"trap '' TERM; sleep 60 # {marker}"
    [result] = arun(run_all(executor(sshd), command, shell="bash", timeout=0.5))
    assert result.timed_out and time.monotonic() - start < 5
    assert survivors(sshd, marker) == ""


def test_a_host_without_the_shell_says_so(sshd: SSHServer) -> None:
    [result] = arun(run_all(executor(sshd), "echo never", shell="bash", env={"PATH": "/nowhere"}))
    assert (result.exit, result.stdout.text) == (127, "")
    assert result.stderr.text == "runbook: this step needs bash, not found on this host\n"


def test_ssh_config_supplies_hostname_port_user_and_key(sshd: SSHServer, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host web-alias\n  HostName {sshd.addresses[1]}\n  Port {sshd.port}\n"
        f"  User {sshd.user}\n  IdentityFile {sshd.client_key}\n"
    )
    ex = SSHExecutor(
        name="h2", address="web-alias", ssh_config=config, known_hosts=sshd.known_hosts
    )
    [result] = arun(run_all(ex, "echo $SSH_CONNECTION"))
    assert result.exit == 0, result.error
    assert result.stdout.text.split()[2:] == [sshd.addresses[1], str(sshd.port)]


def test_aes_gcm_is_preferred_unless_the_ssh_config_or_an_include_names_ciphers(
    sshd: SSHServer, tmp_path: Path
) -> None:
    async def cipher(ex: SSHExecutor) -> str:
        try:
            await ex.connect()
            assert ex._conn is not None
            return str(ex._conn.get_extra_info("send_cipher"))
        finally:
            await ex.close()

    assert arun(cipher(executor(sshd))) == "aes128-gcm@openssh.com"
    config = tmp_path / "ssh_config"
    for text in (
        "Ciphers chacha20-poly1305@openssh.com\n",
        "Ciphers=chacha20-poly1305@openssh.com\n",
    ):
        config.write_text(text)
        chosen = arun(cipher(executor(sshd, ssh_config=config)))
        assert chosen == "chacha20-poly1305@openssh.com", text
    config.write_text(f"Host other\n  Port {sshd.port}\n")  # says nothing of ciphers
    assert arun(cipher(executor(sshd, ssh_config=config))) == "aes128-gcm@openssh.com"
    # an included file counts as the config: it chooses when it names ciphers, else AES-GCM
    included = tmp_path / "more.conf"
    config.write_text(f"Include {tmp_path}/more*.conf\n")
    included.write_text("ServerAliveInterval 30\n")
    assert arun(cipher(executor(sshd, ssh_config=config))) == "aes128-gcm@openssh.com"
    included.write_text("Ciphers chacha20-poly1305@openssh.com\n")
    assert arun(cipher(executor(sshd, ssh_config=config))) == "chacha20-poly1305@openssh.com"


# --- timeouts and cancellation kill the remote command ----------------------------------------


def survivors(sshd: SSHServer, marker: str) -> str:
    # `[x]` keeps pgrep from matching the shell that runs it
    pattern = f"[{marker[0]}]{marker[1:]}"
    [result] = arun(run_all(executor(sshd), f"pgrep -af '{pattern}' || true"))
    return result.stdout.text


def test_timeout_kills_the_remote_process_group(sshd: SSHServer) -> None:
    marker = "runner-timeout-probe-1"
    start = time.monotonic()
    [result] = arun(run_all(executor(sshd), f"trap '' TERM; sleep 60 # {marker}", timeout=0.5))
    assert result.timed_out and result.exit == -9  # TERM was ignored, so KILL it took
    assert time.monotonic() - start < 5
    assert survivors(sshd, marker) == ""


def test_timeout_with_output_keeps_what_was_printed(sshd: SSHServer) -> None:
    [result] = arun(run_all(executor(sshd), "echo started; sleep 60", timeout=0.5))
    assert result.timed_out and result.exit == -15  # the group died of the first TERM
    assert result.stdout.text == "started\n"


def test_cancelled_run_still_kills_the_remote_command(sshd: SSHServer) -> None:
    marker = "runner-cancel-probe-1"

    async def go() -> None:
        ex = executor(sshd)
        task = asyncio.ensure_future(
            ex.run(CommandRequest(f"trap '' TERM; sleep 60 # {marker}"), lambda s, b: None)
        )
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the cancelled run returned only once its kill was done: a rollback may follow now
        [left] = await run_all(executor(sshd), f"pgrep -af '[{marker[0]}]{marker[1:]}' || true")
        assert left.stdout.text == ""
        await ex.close()

    arun(go())


def test_a_command_cancelled_at_any_point_of_its_start_leaves_nothing_running(
    sshd: SSHServer,
) -> None:
    """Cancelled before its channel opened, a command never runs; cancelled after (while the
    exec request waits for its answer), it is starting and must be killed like any other."""
    marker = "runner-cancel-probe-2"

    async def go() -> None:
        ex = executor(sshd)
        await ex.run(CommandRequest("true"), lambda s, b: None)  # connected: runs only open
        for ticks in range(12):  # cancel 0, 1, 2, ... event-loop iterations into the start
            task = asyncio.ensure_future(
                ex.run(CommandRequest(f"sleep 60 # {marker}"), lambda s, b: None)
            )
            for _ in range(ticks):
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        await ex.close()

    arun(go())
    assert survivors(sshd, marker) == ""


# --- host keys ------------------------------------------------------------------------------


def test_unknown_host_key_is_refused_with_its_fingerprint(sshd: SSHServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(ConnectionFailed) as err:
        arun(run_all(executor(sshd, known_hosts=empty), "true"))
    message = str(err.value)
    assert message.startswith("h1: unknown host key") and "\n" not in message
    assert fingerprint(sshd.host_key_pub) in message
    assert empty.read_text() == ""


def test_changed_host_key_is_refused(sshd: SSHServer, tmp_path: Path) -> None:
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[{sshd.addresses[0]}]:{sshd.port} {other_host_key()}\n")
    before = wrong.read_text()
    for accept in (False, True):  # accept-new never accepts a changed key
        with pytest.raises(ConnectionFailed, match="HOST KEY CHANGED") as err:
            arun(run_all(executor(sshd, known_hosts=wrong, accept_new_host_keys=accept), "true"))
        assert fingerprint(sshd.host_key_pub) in str(err.value)
    assert wrong.read_text() == before


def test_accept_new_host_keys_appends_the_key(sshd: SSHServer, tmp_path: Path) -> None:
    known = tmp_path / "ssh" / "known_hosts"  # neither the file nor its directory exist yet
    [result] = arun(run_all(executor(sshd, known_hosts=known, accept_new_host_keys=True), "true"))
    assert result.exit == 0
    assert known.read_text() == f"[{sshd.addresses[0]}]:{sshd.port} {sshd.host_key_pub}\n"
    [again] = arun(run_all(executor(sshd, known_hosts=known), "true"))  # now simply known
    assert again.exit == 0
    assert known.read_text().count("\n") == 1


def test_a_key_held_by_ssh_agent_authenticates(
    sshd: SSHServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not shutil.which("ssh-agent"):
        pytest.skip("ssh-agent (openssh-client) is not installed")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/id_* to fall back on
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if sock.exists():
                break
            time.sleep(0.01)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        with pytest.raises(ConnectionFailed, match="authentication failed"):
            arun(run_all(executor(sshd, key=None), "true"))  # the agent holds nothing yet
        env = {"SSH_AUTH_SOCK": str(sock), "PATH": "/usr/bin:/bin"}
        subprocess.run(["ssh-add", "-q", str(sshd.client_key)], env=env, check=True)
        [result] = arun(run_all(executor(sshd, key=None), "echo via-agent"))
        assert result.stdout.text == "via-agent\n"
    finally:
        agent.terminate()
        agent.wait(5)


# --- connection failures --------------------------------------------------------------------


def test_wrong_client_key_fails_authentication(sshd: SSHServer, tmp_path: Path) -> None:
    key = tmp_path / "stranger"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(key))
    key.chmod(0o600)
    with pytest.raises(ConnectionFailed, match=r"^h1: authentication failed"):
        arun(run_all(executor(sshd, key=key), "true"))


def test_connection_refused_fails_fast(sshd: SSHServer) -> None:
    start = time.monotonic()
    with pytest.raises(ConnectionFailed, match=r"^h1: connection refused by 127\.0\.0\.1:1$"):
        arun(run_all(executor(sshd, port=1), "true"))
    assert time.monotonic() - start < 2


def test_silent_server_times_out(sshd: SSHServer) -> None:
    with socket.socket() as silent:  # the kernel accepts the TCP connection; no banner ever comes
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(ConnectionFailed, match=r"^h1: timed out connecting to .* after 0\.5s$"):
            arun(run_all(executor(sshd, port=port, connect_timeout=0.5), "true"))
    assert time.monotonic() - start < 2


def test_unresolvable_address(sshd: SSHServer) -> None:
    with pytest.raises(ConnectionFailed, match=r"^h1: (cannot resolve|timed out)"):
        arun(run_all(executor(sshd, address="no-such-host.invalid", connect_timeout=3), "true"))


# --- faults mid-run (private servers: these kill or freeze them) ----------------------------


# The remote commands in these two outlive their dead connection (as on a real host), so they
# only sleep a few seconds: nothing is left behind for long.


def test_sshd_killed_mid_command(make_sshd: Callable[[], SSHServer]) -> None:
    server = make_sshd()

    async def go() -> tuple[CommandResult, float, CommandResult]:
        ex = executor(server)
        try:
            task = asyncio.ensure_future(
                ex.run(CommandRequest("echo started; sleep 5"), lambda s, b: None)
            )
            await asyncio.sleep(0.5)
            server.stop()
            start = time.monotonic()
            lost = await asyncio.wait_for(task, 10)
            elapsed = time.monotonic() - start
            server.start()  # the host comes back: the next command reconnects
            after = await ex.run(CommandRequest("echo back"), lambda s, b: None)
        finally:
            await ex.close()
        return lost, elapsed, after

    lost, elapsed, after = arun(go())
    assert lost.exit == 255 and lost.error.startswith("h1: connection lost: ")
    assert "\n" not in lost.error
    assert lost.stdout.text == "started\n"
    assert elapsed < 3
    assert (after.exit, after.stdout.text) == (0, "back\n")


def test_hung_host_is_detected_by_keepalives(make_sshd: Callable[[], SSHServer]) -> None:
    server = make_sshd()

    async def go() -> tuple[CommandResult, float]:
        ex = executor(server, keepalive_interval=0.5, keepalive_count_max=2)
        try:
            task = asyncio.ensure_future(ex.run(CommandRequest("sleep 5"), lambda s, b: None))
            await asyncio.sleep(0.3)
            assert server.freeze()  # TCP stays open, nothing answers
            start = time.monotonic()
            result = await asyncio.wait_for(task, 10)
            return result, time.monotonic() - start
        finally:
            await ex.close()

    result, elapsed = arun(go())
    assert result.exit == 255 and "keepalive" in result.error
    assert elapsed < 4
