"""The shell text of a remote command: shared by both SSH paths, and the per-command channel's
wrapper (the path taken when a host's helper cannot start: no Python 3 there).

A command run over a channel of its own runs under a small POSIX sh wrapper that gives it the
helper's two guarantees: it dies with its session (a watcher reads the channel's stdin and, at
EOF, SIGKILLs the command's process group) and a kill reaches it whoever it runs as (for a
`sudo:` command, the group is killed through `sudo -u USER` too, since the SSH user's own kill
gets EPERM on the target user's processes).
"""

from __future__ import annotations

import shlex
from dataclasses import replace

from runner.execution.executors.base import CommandRequest, sudo_user, wrap_command
from runner.execution.executors.remote_helper import COMMAND_VAR, RUN_FROM_ENV

__all__ = ["channel_text", "helper_text", "kill_line", "sudo_user"]

MARK_SHELL = "printf '\\036runner-pgid %s\\n' \"$$\" >&2; "  # see ssh.py: the group to kill


def helper_text(request: CommandRequest, as_root: bool) -> tuple[str, str | None]:
    """What the helper runs with `/bin/sh -c`, and the user whose helper runs it (sudo)."""
    inner = replace(request, sudo=None)  # the helper itself runs as the sudo user
    return wrap_command(inner, as_root=as_root, exports=True), sudo_user(request, as_root)


def kill_line(sig: str, pgid: str, sudo: str | None) -> str:
    """sh text that sends `sig` to process group `pgid`: through sudo first for a sudo command
    (its processes are the target user's), then as the SSH user (the wrapper, sudo itself)."""
    own = f"kill -{sig} -{pgid} 2>/dev/null || kill -{sig} {pgid} 2>/dev/null"
    if sudo is None:
        return own
    # double quotes: a "$$" is the wrapper's pid, expanded before sudo runs the kill
    through = f'"kill -{sig} -{pgid}"'
    return f"sudo -n -u {shlex.quote(sudo)} -- /bin/sh -c {through} 2>/dev/null; {own}"


def channel_text(request: CommandRequest, as_root: bool) -> tuple[str, bytes]:
    """What a channel of its own runs (the group mark, then the wrapper under /bin/sh), and what
    to write to its stdin first: the command's text, which the wrapper reads (its length on a
    line, then the text) and hands the command's shell in its environment, never in arguments
    (RUN_FROM_ENV). The rest of stdin stays open: its end is the session's."""
    command = wrap_command(request, as_root=as_root, exports=True).encode()
    watcher = kill_line("KILL", "$$", sudo_user(request, as_root))
    wrapper = (
        # the wrapper outlives a TERM of the group to report how the command itself ended
        "exec 3<&0; trap 'got=1' TERM HUP\n"
        f'IFS= read -r n <&3 && {COMMAND_VAR}=$(head -c "$n" <&3) || exit 125\n'
        f"export {COMMAND_VAR}; /bin/sh -c {shlex.quote(RUN_FROM_ENV)} </dev/null 3<&- & c=$!\n"
        f"unset {COMMAND_VAR}\n"
        # the session's end closes our stdin: kill the whole group, whoever runs it
        f"{{ while read -r _; do :; done; {watcher}; }} <&3 >/dev/null 2>&1 &\n"
        "w=$!; exec 3<&-\n"
        'while :; do wait "$c"; s=$?; kill -0 "$c" 2>/dev/null || break; done\n'
        'kill "$w" 2>/dev/null; trap - TERM HUP\n'
        # died of a signal: die of it too, so the channel reports the signal, as before
        'if [ "$s" -gt 128 ] && [ "$s" -lt 160 ]; then kill -$((s - 128)) $$; fi\n'
        'exit "$s"\n'
    )
    return f"{MARK_SHELL}exec /bin/sh -c {shlex.quote(wrapper)}", b"%d\n" % len(command) + command
