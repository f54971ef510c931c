"""A local command's process group dies with the runner, as a remote one dies with its SSH session.

The runner can die without running another line (SIGKILL, the OOM killer), and a command in a
session of its own would then run on unsupervised: a `resume` could start it a second time beside
it. So a watcher (one `/bin/sh` per runner process, started with its first local command, in a
session of its own) holds the read end of a pipe whose only write end is the runner's. Nothing is
ever written to it: the read returns when the runner is gone, however it went, and the watcher
kills the process group of every command running at that moment, as the SSH helper does at the
end of its session.

The watcher learns those groups without a message: the runner writes a group's id into a slot
of a file in memory they share (a memfd, its fd 3) when the command starts, and blanks the slot
when the command ends; the watcher reads the file once, at the end. A command costs two `pwrite`s
and a `poll` (is the watcher still there?) and wakes no other process. A command's group is
written before the runner lets the shell run the command (the gate on its stdin): a runner that
dies before then leaves a shell that reads EOF at its gate and runs nothing.

What a command left running in its group after it ended (`nohup daemon >/dev/null &`) is its
effect, not a survivor: its slot is blank by then. Why not PR_SET_PDEATHSIG: docs/decisions.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import tempfile

GRACE = 2  # seconds between SIGTERM and SIGKILL, as local.py's kill of a command
# Started in the background by a shell that exits at once: the watcher is not a child of the
# runner (which has no process of its own to reap, or to count among its children). Its stdin is
# the pipe (fd 4: a background job's stdin would be /dev/null); `read` returns at EOF only, since
# nothing is written. Then the table, a group id a line (blank: free). The groups are killed as a
# timeout kills them: SIGTERM, which `sudo` passes on to the command it runs as another user (a
# SIGKILL from us would kill sudo alone), then SIGKILL after the grace.
_WATCH = f"""\
: runbook: kills the process groups of its local commands if it dies
(trap '' INT TERM HUP; cd /
 while read -r _; do :; done
 gs=; while read -r g; do [ -z "$g" ] || gs="$gs $g"; done <&3
 [ -n "$gs" ] || exit 0
 for g in $gs; do kill -s TERM -- "-$g"; done 2>/dev/null
 sleep {GRACE}
 for g in $gs; do kill -s KILL -- "-$g"; done 2>/dev/null
) <&4 4<&- &
"""
_SLOT = 8  # b"%7d\n": a pid is at most 4194304 (the kernel's PID_MAX_LIMIT), 7 digits
_BLANK = b" " * (_SLOT - 1) + b"\n"


class Lifeline:
    def __init__(self) -> None:
        self._table = -1  # the memfd both processes hold
        self._pipe = -1  # the write end, ours alone (O_CLOEXEC: no command inherits it)
        self._poll = select.poll()  # on the write end: POLLERR once the watcher is gone
        self._free: list[int] = []
        self._slots = 0

    def hold(self, pgid: int) -> int:
        """Until release(): kill group pgid if this process dies. Returns the slot (-1: no
        watcher could be started; the command runs unguarded, as before)."""
        try:
            self._ensure_watcher()
            slot = self._free.pop() if self._free else self._slots
            os.pwrite(self._table, b"%7d\n" % pgid, slot * _SLOT)
        except OSError:
            return -1
        if slot == self._slots:
            self._slots += 1
        return slot

    def release(self, slot: int) -> None:
        if slot < 0:
            return
        with contextlib.suppress(OSError):
            os.pwrite(self._table, _BLANK, slot * _SLOT)
        self._free.append(slot)

    def _ensure_watcher(self) -> None:
        if self._pipe >= 0:
            if not self._poll.poll(0):
                return
            # killed (by a person, the OOM killer): start another
            self._poll.unregister(self._pipe)
            os.close(self._pipe)
            self._pipe = -1
        if self._table < 0:
            if hasattr(os, "memfd_create"):
                self._table = _high(os.memfd_create("runbook-groups"))
            else:  # not Linux: a file nobody else can open
                table, path = tempfile.mkstemp(prefix="runbook-groups.")
                os.unlink(path)
                self._table = _high(table)
        read_end, write_end = os.pipe()
        read_end, null = _high(read_end), _high(os.open(os.devnull, os.O_RDWR))
        try:
            fds = (null, null, null, self._table, read_end)
            starter = os.posix_spawn(
                "/bin/sh",
                ["/bin/sh", "-c", _WATCH],
                {"PATH": os.defpath},  # for `sleep`
                file_actions=[(os.POSIX_SPAWN_DUP2, fd, i) for i, fd in enumerate(fds)],
                setsid=True,  # a Ctrl-C at the terminal is the runner's, not the watcher's
            )
            os.waitpid(starter, 0)  # it exits once the watcher is started
        except OSError:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
            os.close(null)
        self._pipe = write_end
        self._poll.register(write_end, 0)  # no events asked: POLLERR and POLLHUP come anyway


def _high(fd: int) -> int:
    """fd moved above the ones the watcher gets (0 to 4), so that no dup2 overwrites another's
    source, whatever this process had open when it started."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


LIFELINE = Lifeline()  # one per process: the executors of all local hosts share it
