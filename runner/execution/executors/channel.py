"""The shell text of a remote command: shared by both SSH paths, and the per-command channel's
wrapper (the path taken when a host's helper cannot start: no Python 3 there).

A command run over a channel of its own runs under a small POSIX sh wrapper that gives it the
helper's two guarantees: it dies with its session (a watcher reads the channel's stdin and, at
EOF, SIGKILLs the command's process group) and a kill reaches it whoever it runs as (for a
`sudo:` command, the group is killed through `sudo -u USER` too, since the SSH user's own kill
gets EPERM on the target user's processes).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import replace

from runner.execution.executors.base import CommandRequest, wrap_command

MARK_SHELL = "printf '\\036runner-pgid %s\\n' \"$$\" >&2; "  # see ssh.py: the group to kill
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _inner(request: CommandRequest) -> CommandRequest:
    # Exports go inside what sudo runs (sudo resets the environment), and not through SSH env
    # requests, which sshd drops unless AcceptEnv allows them. The braces keep a multi-line
    # command one compound command, so `cd dir && …` guards all of it, not its first line.
    for name in request.env:
        if not _ENV_NAME.match(name):
            raise ValueError(f"invalid environment variable name: {name!r}")
    exports = "".join(f"export {k}={shlex.quote(v)}; " for k, v in request.env.items())
    return replace(request, command=f"{{ {exports}{request.command}\n}}")


def sudo_user(request: CommandRequest, as_root: bool) -> str | None:
    """Whom the command must run as, when that takes sudo (not root as root)."""
    if request.sudo and not (as_root and request.sudo == "root"):
        return request.sudo
    return None


def helper_text(request: CommandRequest, as_root: bool) -> tuple[str, str | None]:
    """What the helper runs with `/bin/sh -c`, and the user whose helper runs it (sudo)."""
    inner = replace(_inner(request), sudo=None)
    return wrap_command(inner, as_root=as_root), sudo_user(request, as_root)


def kill_line(sig: str, pgid: str, sudo: str | None) -> str:
    """sh text that sends `sig` to process group `pgid`: through sudo first for a sudo command
    (its processes are the target user's), then as the SSH user (the wrapper, sudo itself)."""
    own = f"kill -{sig} -{pgid} 2>/dev/null || kill -{sig} {pgid} 2>/dev/null"
    if sudo is None:
        return own
    # double quotes: a "$$" is the wrapper's pid, expanded before sudo runs the kill
    through = f'"kill -{sig} -{pgid}"'
    return f"sudo -n -u {shlex.quote(sudo)} -- /bin/sh -c {through} 2>/dev/null; {own}"


def channel_text(request: CommandRequest, as_root: bool) -> str:
    """The text for a channel of its own: the group mark, then the wrapper under /bin/sh."""
    command = wrap_command(_inner(request), as_root=as_root)
    watcher = kill_line("KILL", "$$", sudo_user(request, as_root))
    wrapper = (
        # the wrapper outlives a TERM of the group to report how the command itself ended
        "exec 3<&0; trap 'got=1' TERM HUP\n"
        f"/bin/sh -c {shlex.quote(command)} </dev/null 3<&- & c=$!\n"
        # the session's end closes our stdin: kill the whole group, whoever runs it
        f"{{ while read -r _; do :; done; {watcher}; }} <&3 >/dev/null 2>&1 &\n"
        "w=$!; exec 3<&-\n"
        'while :; do wait "$c"; s=$?; kill -0 "$c" 2>/dev/null || break; done\n'
        'kill "$w" 2>/dev/null; trap - TERM HUP\n'
        # died of a signal: die of it too, so the channel reports the signal, as before
        'if [ "$s" -gt 128 ] && [ "$s" -lt 160 ]; then kill -$((s - 128)) $$; fi\n'
        'exit "$s"\n'
    )
    return f"{MARK_SHELL}exec /bin/sh -c {shlex.quote(wrapper)}"
