"""The executor interface: "run this command, stream its output, give me a result".

Timeouts are enforced by the executor (it must kill the command, remotely too), but retries,
expectations and the step loop live in the engine. Executors never write the audit log or the
screen: they hand output chunks to the `on_output` callback the engine passes in.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from runner.execution.executors.remote_helper import COMMAND_VAR, RUN_FROM_ENV

HEAD_BYTES = 4096
TAIL_BYTES = 4096
KEEP_BYTES = 1 << 20  # what checks (expect, capture) may see of a stream; the rest is only counted

OutputCallback = Callable[[str, bytes], None]  # (stream name "stdout"|"stderr", chunk)


class OutputDigest:
    """Bounded record of a stream: head, tail, byte count and SHA-256 of all of it.

    Memory stays flat however much a command prints: at most KEEP_BYTES + TAIL_BYTES are held.
    """

    def __init__(self, keep: int = KEEP_BYTES) -> None:
        self._sha = hashlib.sha256()
        self._kept = bytearray()
        self._keep = keep
        self._tail = bytearray()
        self.size = 0
        self.cut = False  # closed before its end: a process outside the killed group held it

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._sha.update(chunk)
        self.size += len(chunk)
        room = self._keep - len(self._kept)
        if room > 0:
            self._kept += chunk[:room]
        self._tail += chunk
        if len(self._tail) > TAIL_BYTES:
            del self._tail[: len(self._tail) - TAIL_BYTES]

    def freeze(self) -> StreamOutput:
        return StreamOutput(
            kept=bytes(self._kept),
            tail=bytes(self._tail),
            size=self.size,
            sha256=self._sha.hexdigest(),
            cut=self.cut,
        )


Digests = tuple[OutputDigest, OutputDigest]  # (stdout, stderr)


@dataclass(frozen=True)
class StreamOutput:
    kept: bytes = b""  # the first KEEP_BYTES
    tail: bytes = b""  # the last TAIL_BYTES
    size: int = 0
    sha256: str = hashlib.sha256(b"").hexdigest()
    cut: bool = False  # not read to its end (see OutputDigest.cut): more may have been printed

    @property
    def text(self) -> str:
        """What checks and captures see: the first KEEP_BYTES, decoded leniently."""
        return self.kept.decode("utf-8", errors="replace")

    @property
    def head(self) -> bytes:
        return self.kept[:HEAD_BYTES]


@dataclass(frozen=True)
class CommandResult:
    exit: int  # the command's exit status; -N when killed by signal N; 255 for transport errors
    stdout: StreamOutput = field(default_factory=StreamOutput)
    stderr: StreamOutput = field(default_factory=StreamOutput)
    duration: float = 0.0
    timed_out: bool = False
    error: str = ""  # one-line reason when the command could not be run at all (e.g. unreachable)


@dataclass(frozen=True)
class CommandRequest:
    command: str  # run by /bin/sh (from its environment: remote_helper.RUN_FROM_ENV)
    shell: str = "sh"  # or a shell of SHELL_ARGV, which /bin/sh hands the command on to
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    sudo: str | None = None  # user to become, or None
    timeout: float | None = None  # seconds
    # Called by the executor at the last moment before the command may start, once its process
    # (or channel) is ready: it returns when what announces the command is durable
    # (groupcommit.py). The local executor spawns the shell first and lets it go after, so the
    # sync overlaps the fork/exec.
    ready: Callable[[], None] | None = field(default=None, compare=False)


class Runner(Protocol):
    """Runs commands on one host, streams their output, gives their result. Timeouts, retries
    and the loop are the engine's. (The SSH executor's per-host helper session, helper.py, is
    its own business: the engine only ever sees the executor.)"""

    async def run(
        self, request: CommandRequest, on_output: OutputCallback, into: Digests | None = None
    ) -> CommandResult:
        """`into`: the caller's (stdout, stderr) digests to fill, so that what a command printed
        is known even if the run is cancelled before it returns a result."""
        ...

    def hurry(self) -> None:
        """A second interrupt: what still runs is killed without the SIGTERM grace."""
        ...

    async def close(self) -> None: ...


# open_tcp(host, port) -> (reader, writer) of a TCP connection made by the host itself
OpenTCP = Callable[[str, int], Awaitable[tuple[Any, Any]]]


class Executor(Runner, Protocol):
    """One per host, from executors/pool.py: everything the engine calls on a host. Opened
    lazily, closed once at the end of the run."""

    @property
    def name(self) -> str: ...

    async def connect(self) -> None:
        """Open (or reuse) what reaches the host; raises ConnectionFailed with a reason."""
        ...

    @property
    def connected(self) -> bool:
        """Nothing to open before a command: connect() would return at once."""
        ...

    @property
    def tunnel(self) -> OpenTCP | None:
        """How an `http:` request is made from the host (None: the host is this machine)."""
        ...


class ConnectionFailed(Exception):
    """The host could not be reached or authenticated: a one-line reason."""


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# The shell sudo starts reads the command's text from its stdin (sudo passes neither our
# environment nor other file descriptors), then gives the command /dev/null as stdin, as every
# command has: the text never appears in sudo's arguments or the shell's (RUN_FROM_ENV).
_FROM_STDIN = f"{COMMAND_VAR}=$(cat) || exit 125; exec </dev/null; {RUN_FROM_ENV}"


def sudo_user(request: CommandRequest, as_root: bool) -> str | None:
    """Whom the command must run as, when that takes sudo (not root as root)."""
    if request.sudo and not (as_root and request.sudo == "root"):
        return request.sudo
    return None


def _exported(env: Mapping[str, str], command: str) -> str:
    """The env as exports at the head of the text: where a command goes through sudo (which
    resets the environment) or an SSH session (sshd drops env requests unless AcceptEnv allows
    them). The braces keep a multi-line command one compound command, so `cd dir && …` guards
    all of it, not its first line."""
    if not env:
        return command
    for name in env:
        if not _ENV_NAME.match(name):
            raise ValueError(f"invalid environment variable name: {name!r}")
    exports = "".join(f"export {k}={shlex.quote(v)}; " for k, v in env.items())
    return f"{{ {exports}{command}\n}}"


# How each shell of `shell:` (besides sh) is started: without the user's start-up files, so that
# a step does not depend on whose rc files are on the host, nor print what they print. zsh still
# reads /etc/zshenv (nothing turns that off); BASH_ENV and ENV are unset before the exec.
SHELL_ARGV = {"bash": "bash --norc --noprofile", "zsh": "zsh -f", "ksh": "ksh"}


def in_shell(command: str, shell: str) -> str:
    """sh text that runs `command` under `shell`: found on the PATH (the step's env applied),
    else exit 127 saying so; given the text in its environment, as /bin/sh is (RUN_FROM_ENV), so
    the text is in no process's arguments; exec'd, so it keeps the pid and process group that
    timeouts and kills aim at. sh: the command as it is."""
    if shell == "sh":
        return command
    argv = SHELL_ARGV.get(shell)
    if argv is None:
        raise ValueError(f"unknown shell: {shell!r}")
    missing = f"runbook: this step needs {shell}, not found on this host"
    return (
        f'command -v {shell} >/dev/null || {{ echo "{missing}" >&2; exit 127; }}\n'
        f"unset BASH_ENV ENV; {COMMAND_VAR}={shlex.quote(command)}; export {COMMAND_VAR}\n"
        f"exec {argv} -c {shlex.quote(RUN_FROM_ENV)}"
    )


def wrap_command(request: CommandRequest, *, as_root: bool, exports: bool = False) -> str:
    """The sh text that applies the shell, env (with `exports`, or for sudo), cwd and sudo around
    the command, in that order from the inside: the command's own shell gets exactly its text,
    the rest is done by sh first. The text itself is for a shell's environment, not its
    arguments (RUN_FROM_ENV): printf is a builtin, so what it pipes into sudo is in no
    process's arguments either."""
    sudo_to = sudo_user(request, as_root)
    command = in_shell(request.command, request.shell)
    if exports or sudo_to:  # sudo resets the environment
        command = _exported(request.env, command)
    if request.cwd:
        # on its own line, not `cd DIR && cmd`: in a multi-line command only the first line
        # would depend on the `cd`, and the rest would run in the wrong directory
        command = f"cd -- {shlex.quote(request.cwd)} || exit 1\n{command}"
    if sudo_to:
        # -n: never prompt (a prompt would hang an unattended run); -H: the target user's HOME.
        # The command's shell is started by sudo's sh: it runs as that user, found on its PATH.
        sudo = f"sudo -n -H -u {shlex.quote(sudo_to)} -- /bin/sh -c {shlex.quote(_FROM_STDIN)}"
        command = f"printf '%s' {shlex.quote(command)} | {sudo}"
    return command
