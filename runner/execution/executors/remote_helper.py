"""The helper that runs on an SSH host (Python 3.8+, stdlib only): one per connection, the
supervisor of every command the run sends there. Not imported by the runner: its source is sent
to the host (`helper.py` starts `python3 -I -S -c BOOT` and writes it to its stdin: compiled
by the runner's Python, run as it is by a host whose Python is the same version, and as source).

Frames both ways: 1 byte kind, 4 bytes command id, 4 bytes length (big-endian), then the payload.
  runner -> host   R run: sudo user (or nothing), NUL, shell text     K kill: signal name
  host -> runner   H hello (id 0)   O stdout bytes   E stderr bytes   X exit: decimal status
Each command runs under `/bin/sh` (its text in the environment: RUN_FROM_ENV) in a session
(process group) of its own, stdin /dev/null.
Imports are C modules only (selectors or signal would cost ~7 ms of CPU on every host: enum).
One write per pass of the loop: a short command's output and exit status make one SSH packet.

`sudo` commands go to a helper of the same kind started as that user (`sudo -n -H -u USER --
python3 ...`), which runs them directly: so a kill comes from the command's own user and reaches
every process of its group, which a kill from the SSH user cannot (EPERM on root's processes).

USER is less trusted than the SSH user: any process of USER may write into its helper's stdout
(a copy of the fd taken with pidfd_getfd or ptrace while the helper is dumpable: see
`undumpable`). So its frames are relayed only if they are what that helper may send: its hello,
then O, E and X (a valid status) about commands routed to USER, none longer than CHUNK.
Anything else drops it (`drop_sub`): its stdin closed (at EOF it kills its groups and exits), its
commands and every later one for USER on this connection fail with the reason. USER can decide
the results of USER's commands (it can anyway: they run as USER), never another's, and cannot
stop this helper from serving them.

The helper dies with its session: at EOF on stdin (the channel closed, the connection or the
runner gone) it SIGKILLs every group it started and exits; the helpers it started under sudo see
their own stdin close and do the same.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import select
import sys
import time
from _struct import Struct

MYPY = False  # `signal` for the type checker, the C module it wraps on the host
if MYPY:
    import signal as _signal
else:
    import _signal

HEADER = Struct(">cII")
CHUNK = 1 << 20  # and a 1 MiB pipe per stream: a command printing a lot, fewer wake-ups
HOLD = 0.002  # seconds output may wait for its command's end, to leave with it in one packet
PAYLOAD = (b"", 0, 0)  # set by the bootstrap: what it read and where, for helpers under sudo


def frame(kind: bytes, cid: int, payload: bytes) -> bytes:
    return HEADER.pack(kind, cid, len(payload)) + payload


def is_status(payload: bytes) -> bool:
    """An X frame's payload as a helper writes it (status_of): 0..255, or -1..-64 (a signal).
    The runner checks it too (helper.py): never int() on what a host sent."""
    digits = payload[1:] if payload[:1] == b"-" else payload
    return 0 < len(digits) <= 3 and digits.isdigit() and -64 <= int(payload) <= 255


def frames(buf: bytes) -> tuple[list[tuple[bytes, int, bytes]], bytes]:
    """The whole frames at the start of buf, each (kind, command id, frame), and what is left."""
    out = []
    while len(buf) >= HEADER.size:
        kind, cid, size = HEADER.unpack_from(buf)
        end = HEADER.size + size
        if len(buf) < end:
            break
        out.append((kind, cid, buf[:end]))
        buf = buf[end:]
    return out, buf


# How /bin/sh gets a command's text, on every path (here, executors/local.py, channel.py): in its
# environment, which only its own user and root may read, never in its arguments, which `ps`
# shows every user of the machine (the text holds secret params' values and the step's env).
# The shell takes it out of the environment before running it: the command's processes do not
# inherit it.
COMMAND_VAR = "RUNBOOK_COMMAND"
RUN_FROM_ENV = f'eval "unset {COMMAND_VAR}\n${COMMAND_VAR}"'


def spawn(
    argv: list[str],
    stdin: int,
    stdout: int,
    stderr: int,
    setsid: bool,
    env: dict[str, str] | None = None,
) -> int:
    """Start argv with those fds as 0, 1, 2, and `env` (else ours); in a new session if asked.
    Returns its pid."""
    actions = [(os.POSIX_SPAWN_DUP2, fd, i) for i, fd in enumerate((stdin, stdout, stderr))]
    where = os.environ if env is None else env
    return os.posix_spawnp(argv[0], argv, where, file_actions=actions, setsid=setsid)


def status_of(raw: int) -> int:
    """Like Popen.returncode: the exit status, or -N when killed by signal N."""
    return -os.WTERMSIG(raw) if os.WIFSIGNALED(raw) else os.WEXITSTATUS(raw)


class Child:
    """A process we started, its pipes still open, and its status once reaped."""

    def __init__(self, pid: int, pipes: int) -> None:
        self.pid, self.pipes, self.killed = pid, pipes, False
        self.status: int | None = None

    def poll(self) -> int | None:
        if self.status is None:
            try:
                pid, raw = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return self.status
            if pid:
                self.status = status_of(raw)
        return self.status


class Sub:
    """A helper started under sudo as another user: its stdin, its frames, what waits for it."""

    def __init__(self, user: str, child: Child, stdin: int, stdout: int, stderr: int) -> None:
        self.user, self.child = user, child
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.buf = b""
        self.queued: list[bytes] | None = []  # frames sent before its hello; None once ready
        self.pending = b""  # what its stdin has not taken yet (see write_sub)

    def wrong(self, kind: bytes, cid: int, payload: bytes, routed: str | None) -> str:
        """What is wrong with a frame from this helper (else ""), whose command id was routed
        to the user `routed` (None: to no one)."""
        if kind == b"H":
            return "" if self.queued is not None and not cid and not payload else "a 2nd hello"
        if self.queued is not None:
            return "a frame before its hello"
        if kind not in (b"O", b"E", b"X"):
            return f"a frame of kind {kind!r}"
        if len(payload) > CHUNK:
            return f"a frame of {len(payload)} bytes"
        if routed != self.user:
            return f"{kind.decode()} for command {cid}, not one of {self.user}'s"
        if kind == b"X" and not is_status(payload):
            return f"the exit status {payload[:16]!r}"
        return ""


class Helper:
    def __init__(self) -> None:
        self.poll = select.poll()
        self.pipes: dict[int, tuple[int, bytes]] = {}  # fd -> command id, b"O" or b"E"
        self.sub_fds: dict[int, str] = {}  # a sudo helper's stdout -> its user
        self.sub_ins: dict[int, Sub] = {}  # a sudo helper's stdin, while it has pending bytes
        self.out: list[bytes] = []  # frames to send at the end of this pass of the loop
        self.size, self.urgent, self.since = 0, False, 0.0  # of what `out` holds
        self.procs: dict[int, Child] = {}
        self.subs: dict[str, Sub] = {}
        self.routed: dict[int, str] = {}  # command id -> the sudo user whose helper runs it
        self.refused: dict[str, bytes] = {}  # sudo user -> why its commands fail (drop_sub)
        self.dropped: list[Child] = []  # the sudo of a dropped helper, reaped once it exits
        self.inbuf = b""
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        self.environ = dict(os.environ)  # what commands start with (once: a copy costs ~20 us)
        self.null = os.open(os.devnull, os.O_RDWR)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        _signal.set_wakeup_fd(wake_w)
        _signal.signal(_signal.SIGCHLD, lambda *_: None)
        self.wake = wake_r
        self.poll.register(wake_r, select.POLLIN)
        self.poll.register(0, select.POLLIN)

    def send(self, data: bytes, urgent: bool = True) -> None:
        if not self.out:
            self.since = time.monotonic()
        self.out.append(data)
        self.size += len(data)
        self.urgent = self.urgent or urgent

    def flush(self) -> None:
        """Send what this pass queued, unless it is only some output of a command still running
        that may end within HOLD: then the next pass (at the latest after HOLD)."""
        held = time.monotonic() - self.since
        if not self.out or (not self.urgent and self.size < CHUNK and held < HOLD):
            return
        view, self.out = memoryview(b"".join(self.out)), []
        self.size, self.urgent = 0, False
        while view:
            view = view[os.write(1, view) :]

    def loop(self) -> None:
        self.send(frame(b"H", 0, b""))
        self.flush()
        while True:
            wait = None
            if self.out:  # output held back: poll no longer than its HOLD
                wait = max(0, int((self.since + HOLD - time.monotonic()) * 1000) + 1)
            for fd, _ in self.poll.poll(wait):
                if fd == 0:
                    if not self.read_runner():
                        return self.die()
                elif fd == self.wake:
                    os.read(fd, 4096)
                elif fd in self.pipes:  # (not closed earlier in this pass)
                    self.read_pipe(fd, *self.pipes[fd])
                elif fd in self.sub_fds:
                    self.read_sub(fd, self.sub_fds[fd])
                elif fd in self.sub_ins:
                    self.write_sub(self.sub_ins[fd], b"")
            self.reap()
            self.flush()

    def read_runner(self) -> bool:
        data = os.read(0, CHUNK)
        if not data:
            return False
        got, self.inbuf = frames(self.inbuf + data)
        for kind, cid, whole in got:
            self.handle(kind, cid, whole[HEADER.size :], whole)
        return True

    def handle(self, kind: bytes, cid: int, payload: bytes, whole: bytes) -> None:
        if kind == b"R":
            user, _, cmd = payload.partition(b"\0")
            if user and user.decode() != self.user:  # a helper runs its own user's commands
                self.routed[cid] = user.decode()
            else:
                return self.start(cid, cmd.decode())
        if cid in self.routed:
            return self.to_sub(self.routed[cid], cid, whole)
        child = self.procs.get(cid)
        if kind == b"K" and child is not None:
            sig = getattr(_signal, "SIG" + payload.decode())
            try:  # noqa: SIM105 - contextlib would cost the host's start-up its import
                os.killpg(child.pid, sig)
            except OSError:
                pass
            if sig == _signal.SIGKILL:
                child.killed = True  # once it is dead, stop waiting for pipes a daemon may hold

    def start(self, cid: int, cmd: str) -> None:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            env = {**self.environ, COMMAND_VAR: cmd}
            pid = spawn(["/bin/sh", "-c", RUN_FROM_ENV], self.null, out_w, err_w, True, env)
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the text
            for fd in (out_r, out_w, err_r, err_w):
                os.close(fd)
            self.send(frame(b"E", cid, f"cannot start /bin/sh: {exc}\n".encode()))
            self.send(frame(b"X", cid, b"127"))
            return
        os.close(out_w)
        os.close(err_w)
        self.procs[cid] = Child(pid, 2)
        for fd, kind in ((out_r, b"O"), (err_r, b"E")):
            os.set_blocking(fd, False)
            try:  # noqa: SIM105 - as above
                fcntl.fcntl(fd, 1031, CHUNK)  # F_SETPIPE_SZ (Linux)
            except OSError:
                pass
            self.pipes[fd] = (cid, kind)
            self.poll.register(fd, select.POLLIN)

    def read_pipe(self, fd: int, cid: int, kind: bytes) -> None:
        """What the pipe holds; a short read is followed by one more, which finds the end of a
        command that is done without another pass of the loop (and another SSH packet)."""
        for _ in range(2):
            try:
                data = os.read(fd, CHUNK)
            except BlockingIOError:
                return
            if not data:
                return self.close_pipe(cid, fd)
            self.send(frame(kind, cid, data), urgent=False)
            if len(data) == CHUNK:  # more to come: the next pass
                return

    def close_pipe(self, cid: int, fd: int) -> None:
        del self.pipes[fd]
        self.poll.unregister(fd)
        os.close(fd)
        self.procs[cid].pipes -= 1

    def reap(self) -> None:
        if self.dropped:
            self.dropped = [child for child in self.dropped if child.poll() is None]
        for cid, child in list(self.procs.items()):
            if child.poll() is None:
                continue
            if child.pipes and child.killed:
                for fd, (owner, _) in list(self.pipes.items()):
                    if owner == cid:
                        self.close_pipe(cid, fd)
            if child.pipes == 0:
                del self.procs[cid]
                self.send(frame(b"X", cid, str(child.status).encode()))

    # --- helpers started under sudo, one per target user ---

    def to_sub(self, user: str, cid: int, whole: bytes) -> None:
        sub = self.subs.get(user)
        if user in self.refused:  # (only an R: a kill finds nothing routed)
            return self.refuse(cid, user)
        if sub is None:
            payload, tag_end, code_end = PAYLOAD
            boot = BOOT % (len(payload), tag_end, code_end)
            # python3 as sudo finds it (secure_path): ours may sit where USER cannot read
            argv = ["sudo", "-n", "-H", "-u", user, "--", "python3", "-I", "-S", "-c", boot]
            fds = os.pipe(), os.pipe(), os.pipe()
            try:
                pid = spawn(argv, fds[0][0], fds[1][1], fds[2][1], setsid=False)
            except OSError as exc:
                for pair in fds:
                    os.close(pair[0])
                    os.close(pair[1])
                self.routed.pop(cid, None)
                self.send(frame(b"E", cid, f"cannot run sudo: {exc}\n".encode()))
                self.send(frame(b"X", cid, b"127"))
                return
            for fd in (fds[0][0], fds[1][1], fds[2][1]):
                os.close(fd)
            os.set_blocking(fds[0][1], False)  # see write_sub
            os.set_blocking(fds[2][0], False)  # see sub_died
            sub = self.subs[user] = Sub(user, Child(pid, 0), fds[0][1], fds[1][0], fds[2][0])
            self.sub_fds[sub.stdout] = user
            self.poll.register(sub.stdout, select.POLLIN)
            self.write_sub(sub, payload)
        if sub.queued is None:
            self.write_sub(sub, whole)
        elif whole[:1] == b"R":
            sub.queued.append(whole)

    def write_sub(self, sub: Sub, data: bytes) -> None:
        """Writes what its stdin takes now, the rest once it has room (poll): never waits for
        it, which a process of its user may stop (SIGSTOP), or which may itself be waiting
        for us to read its output."""
        if self.subs.get(sub.user) is not sub:  # died or dropped meanwhile
            return
        sub.pending += data
        try:
            sub.pending = sub.pending[os.write(sub.stdin, sub.pending) :]
        except BlockingIOError:
            pass
        except OSError:  # it is gone: its stdout's end tells what sudo said
            return self.sub_died(sub.user, sub)
        if sub.pending and sub.stdin not in self.sub_ins:
            self.sub_ins[sub.stdin] = sub
            self.poll.register(sub.stdin, select.POLLOUT)
        elif not sub.pending and sub.stdin in self.sub_ins:
            del self.sub_ins[sub.stdin]
            self.poll.unregister(sub.stdin)

    def read_sub(self, fd: int, user: str) -> None:
        sub = self.subs[user]
        data = os.read(fd, CHUNK)
        if not data:
            return self.sub_died(user, sub)
        got, sub.buf = frames(sub.buf + data)
        for kind, cid, whole in got:
            wrong = sub.wrong(kind, cid, whole[HEADER.size :], self.routed.get(cid))
            if wrong:
                return self.drop_sub(sub, wrong)
            if kind == b"H":  # it runs: send what waited for it
                queued, sub.queued = sub.queued or [], None
                self.write_sub(sub, b"".join(queued))
                if self.subs.get(user) is not sub:  # the write found it dead: it is gone
                    return
            else:
                if kind == b"X":
                    del self.routed[cid]
                self.send(whole)
        if len(sub.buf) >= HEADER.size and HEADER.unpack_from(sub.buf)[2] > CHUNK:
            # no frame of a helper is longer (a read of a pipe is at most CHUNK): never buffer it
            self.drop_sub(sub, f"a frame of {HEADER.unpack_from(sub.buf)[2]} bytes")

    def drop_sub(self, sub: Sub, why: str) -> None:
        """A helper under sudo broke the protocol: someone writes into its stdout. Never read
        it again; close its stdin (at EOF it kills its groups and exits: not waited for, a
        process of its user may keep it alive); its commands fail, and so will later ones for
        its user on this connection: whoever wrote those frames could do it again."""
        user = sub.user
        self.refused[user] = (
            f"sudo {user}: its helper broke the helper protocol ({why}); it was stopped, and "
            f"commands as {user} fail for the rest of this connection\n"
        ).encode()
        self.forget_sub(sub)
        self.dropped.append(sub.child)
        for cid, owner in list(self.routed.items()):
            if owner == user:
                self.refuse(cid, user)

    def refuse(self, cid: int, user: str) -> None:
        del self.routed[cid]
        self.send(frame(b"E", cid, self.refused[user]))
        self.send(frame(b"X", cid, b"255"))  # as for a command the SSH connection lost

    def forget_sub(self, sub: Sub) -> None:
        del self.subs[sub.user]
        del self.sub_fds[sub.stdout]
        self.poll.unregister(sub.stdout)
        if self.sub_ins.pop(sub.stdin, None) is not None:
            self.poll.unregister(sub.stdin)
        for fd in (sub.stdin, sub.stdout, sub.stderr):
            os.close(fd)

    def sub_died(self, user: str, sub: Sub) -> None:
        """sudo refused (or the helper under it died): every command sent its way fails, with
        what sudo said as its stderr and sudo's exit status, as `sudo … sh -c` would."""
        if self.subs.get(user) is not sub:
            return
        # What its stderr holds now (sudo exited, its message is there), never waiting for
        # its end: a process of USER may hold a copy of it open, or write to it without end.
        said = b""
        while len(said) < 4096:
            try:
                chunk = os.read(sub.stderr, 4096)
            except BlockingIOError:
                break
            if not chunk:
                break
            said += chunk
        said = said[:4096]
        self.forget_sub(sub)
        _, raw = os.waitpid(sub.child.pid, 0)
        status = status_of(raw) or 1
        for cid, owner in list(self.routed.items()):
            if owner == user:
                del self.routed[cid]
                if said:
                    self.send(frame(b"E", cid, said))
                self.send(frame(b"X", cid, str(status).encode()))

    def die(self) -> None:
        for child in self.procs.values():
            try:  # noqa: SIM105 - as above
                os.killpg(child.pid, _signal.SIGKILL)
            except OSError:
                pass
        for sub in self.subs.values():
            os.close(sub.stdin)  # its stdin at EOF: it kills its own groups
            try:  # noqa: SIM105 - as above
                # a process of its user may have stopped it, and sudo stops with its command
                os.kill(sub.child.pid, _signal.SIGCONT)
            except OSError:
                pass
        deadline = time.monotonic() + 2  # and may stop it again: not waited for without end
        for sub in self.subs.values():
            while sub.child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        os._exit(0)


def undumpable() -> None:
    """prctl(PR_SET_DUMPABLE, 0), as the runner does for itself (runner/__main__.py): no process
    of our user may ptrace us or take our fds (pidfd_getfd), and /proc/PID is root's. Through
    _ctypes, the C module (~0.6 ms), not ctypes (~6 ms of Python modules on every host). Where
    it is missing, the checks on a sudo helper's frames still hold (Helper.read_sub). Commands
    are not affected: dumpable is reset at exec."""
    try:
        import _ctypes

        prctl = _ctypes.dlsym(_ctypes.dlopen(None), "prctl")  # type: ignore[arg-type]
        _ctypes.call_function(prctl, (4, 0, 0, 0, 0))  # PR_SET_DUMPABLE
    except Exception:  # no _ctypes in this Python (a minimal build), not Linux, ...
        pass


# What the runner (and a helper, for one under sudo) runs with `python3 -I -S -c`, then writes
# to its stdin N bytes: a Python cache tag (cpython-311), this file compiled by that Python
# (marshal), this file's text. Exactly N bytes are read, so frames that follow stay. A host whose
# Python has the same tag runs the compiled code (no 2 ms compile on every host), others the text.
BOOT = (
    "import os,sys,marshal;N,A,B=%d,%d,%d;P=b''\nwhile len(P)<N:\n c=os.read(0,N-len(P))\n"
    " if not c:raise SystemExit(1)\n P+=c\n"
    "exec(marshal.loads(P[A:B])if A and P[:A]==(sys.implementation.cache_tag or'').encode()"
    "else P[B:])"
)

if __name__ == "__main__":
    # the host's python, not ours: posix_spawn(setsid=) needs 3.8; exit before the hello, so
    # that the runner uses a channel per command instead
    if sys.version_info < (3, 8):  # noqa: UP036
        sys.exit("python3 is older than 3.8")
    undumpable()
    g = globals()
    PAYLOAD = (g.get("P", b""), g.get("A", 0), g.get("B", 0))  # the bootstrap's
    Helper().loop()
