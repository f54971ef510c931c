"""The helper that runs on an SSH host (Python 3.6+, stdlib only): one per connection, the
supervisor of every command the run sends there. Not imported by the runner: its source is sent
to the host (`ssh.py` starts `python3 -c BOOT N` and writes these N bytes to its stdin).

Frames both ways: 1 byte kind, 4 bytes command id, 4 bytes length (big-endian), then the payload.
  runner -> host   R run {"cmd": shell text, "sudo": user or null}   K kill {"sig": "TERM"}
  host -> runner   H hello (id 0)   O stdout bytes   E stderr bytes   X exit {"exit": n}
Each command runs as `/bin/sh -c` in a session (process group) of its own, stdin /dev/null.

`sudo` commands go to a helper of the same kind started as that user (`sudo -n -H -u USER --
python3 ...`), which runs them directly: so a kill comes from the command's own user and reaches
every process of its group, which a kill from the SSH user cannot (EPERM on root's processes).

The helper dies with its session: at EOF on stdin (the channel closed, the connection or the
runner gone) it SIGKILLs every group it started and exits; the helpers it started under sudo see
their own stdin close and do the same.
"""

import contextlib
import json
import os
import pwd
import selectors
import signal
import struct
import subprocess
import sys
from typing import Any

HEADER = struct.Struct(">cII")
CHUNK = 65536
SOURCE = b""  # set by the bootstrap: this file's text, to start helpers under sudo


def frame(kind: bytes, cid: int, payload: bytes) -> bytes:
    return HEADER.pack(kind, cid, len(payload)) + payload


class Helper:
    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.out = sys.stdout.buffer
        self.procs: dict[int, list[Any]] = {}  # cid -> [Popen, open pipes, killed]
        # sudo user -> [Popen, frame buffer, frames queued until its hello, None once ready]
        self.subs: dict[str, list[Any]] = {}
        self.routed: dict[int, str] = {}  # cid -> sudo user
        self.inbuf = b""
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.sel.register(wake_r, selectors.EVENT_READ, ("wake", None))
        self.sel.register(0, selectors.EVENT_READ, ("in", None))

    def send(self, data: bytes) -> None:
        self.out.write(data)
        self.out.flush()

    def loop(self) -> None:
        self.send(frame(b"H", 0, b"{}"))
        while True:
            for key, _ in self.sel.select():
                what, arg = key.data
                if what == "in":
                    if not self.read_runner(key.fd):
                        return self.die()
                elif what == "wake":
                    os.read(key.fd, 4096)
                elif what == "pipe":
                    self.read_pipe(key.fd, *arg)
                elif what == "sub":
                    self.read_sub(key.fd, arg)
            self.reap()

    def read_runner(self, fd: int) -> bool:
        data = os.read(fd, CHUNK)
        if not data:
            return False
        self.inbuf += data
        while len(self.inbuf) >= HEADER.size:
            kind, cid, size = HEADER.unpack_from(self.inbuf)
            if len(self.inbuf) < HEADER.size + size:
                break
            whole = self.inbuf[: HEADER.size + size]
            payload = whole[HEADER.size :]
            self.inbuf = self.inbuf[HEADER.size + size :]
            self.handle(kind, cid, json.loads(payload.decode()), whole)
        return True

    def handle(self, kind: bytes, cid: int, msg: dict[str, Any], whole: bytes) -> None:
        user = msg.get("sudo") if kind == b"R" else self.routed.get(cid)
        if user and user != self.user:  # a helper runs its own user's commands itself
            self.routed[cid] = user
            self.to_sub(user, cid, whole)
        elif kind == b"R":
            self.start(cid, msg["cmd"])
        elif kind == b"K" and cid in self.procs:
            self.kill(cid, getattr(signal, "SIG" + msg["sig"]))

    def start(self, cid: int, cmd: str) -> None:
        try:
            proc: Any = subprocess.Popen(
                ["/bin/sh", "-c", cmd],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            self.send(frame(b"E", cid, f"cannot start /bin/sh: {exc}\n".encode()))
            self.send(frame(b"X", cid, b'{"exit": 127}'))
            return
        self.procs[cid] = [proc, 2, False]
        for stream, kind in ((proc.stdout, b"O"), (proc.stderr, b"E")):
            os.set_blocking(stream.fileno(), False)
            self.sel.register(stream.fileno(), selectors.EVENT_READ, ("pipe", (cid, kind, stream)))

    def read_pipe(self, fd: int, cid: int, kind: bytes, stream: Any) -> None:
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return
        if data:
            self.send(frame(kind, cid, data))
            return
        self.close_pipe(cid, fd, stream)

    def close_pipe(self, cid: int, fd: int, stream: Any) -> None:
        self.sel.unregister(fd)
        stream.close()
        self.procs[cid][1] -= 1

    def kill(self, cid: int, sig: int) -> None:
        entry = self.procs[cid]
        with contextlib.suppress(OSError):
            os.killpg(entry[0].pid, sig)
        if sig == signal.SIGKILL:
            entry[2] = True  # once it is dead, stop waiting for pipes a daemon may hold

    def reap(self) -> None:
        for cid, entry in list(self.procs.items()):
            proc, pipes, killed = entry
            if proc.poll() is None:
                continue
            if pipes and killed:
                for key in list(self.sel.get_map().values()):
                    if key.data[0] == "pipe" and key.data[1][0] == cid:
                        self.close_pipe(cid, key.fd, key.data[1][2])
                pipes = 0
            if pipes == 0:
                del self.procs[cid]
                self.send(frame(b"X", cid, json.dumps({"exit": proc.returncode}).encode()))

    # --- helpers started under sudo, one per target user ---

    def to_sub(self, user: str, cid: int, whole: bytes) -> None:
        sub = self.subs.get(user)
        if sub is None:
            boot = f"import sys;S=sys.stdin.buffer.read({len(SOURCE)});exec(S)"
            # python3 as sudo finds it (secure_path): ours may sit where USER cannot read
            argv = ["sudo", "-n", "-H", "-u", user, "--", "python3", "-c", boot]
            try:
                proc: Any = subprocess.Popen(
                    argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                )
            except OSError as exc:
                self.send(frame(b"E", cid, f"cannot run sudo: {exc}\n".encode()))
                self.send(frame(b"X", cid, b'{"exit": 127}'))
                return
            proc.stdin.write(SOURCE)
            proc.stdin.flush()
            sub = self.subs[user] = [proc, b"", []]
            self.sel.register(proc.stdout.fileno(), selectors.EVENT_READ, ("sub", user))
        if sub[2] is None:
            self.write_sub(user, sub, whole)
        elif whole[:1] == b"R":
            sub[2].append(whole)

    def write_sub(self, user: str, sub: list[Any], data: bytes) -> None:
        try:
            sub[0].stdin.write(data)
            sub[0].stdin.flush()
        except OSError:
            self.sub_died(user, sub)

    def read_sub(self, fd: int, user: str) -> None:
        sub = self.subs[user]
        data = os.read(fd, CHUNK)
        if not data:
            self.sel.unregister(fd)
            sub[0].wait()
            return self.sub_died(user, sub)
        buf = sub[1] + data
        while len(buf) >= HEADER.size:
            kind, cid, size = HEADER.unpack_from(buf)
            if len(buf) < HEADER.size + size:
                break
            whole, buf = buf[: HEADER.size + size], buf[HEADER.size + size :]
            if kind == b"H":  # it runs: send what waited for it
                queued, sub[2] = sub[2], None
                for f in queued:
                    self.write_sub(user, sub, f)
            else:
                if kind == b"X":
                    self.routed.pop(cid, None)
                self.send(whole)
        sub[1] = buf

    def sub_died(self, user: str, sub: list[Any]) -> None:
        """sudo refused (or the helper under it died): every command sent its way fails, with
        what sudo said as its stderr and sudo's exit status, as `sudo … sh -c` would."""
        if self.subs.get(user) is not sub:
            return
        del self.subs[user]
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(sub[0].stdout.fileno())
        said = sub[0].stderr.read() or b""
        status = sub[0].wait()
        for cid, owner in list(self.routed.items()):
            if owner == user:
                del self.routed[cid]
                if said:
                    self.send(frame(b"E", cid, said))
                self.send(frame(b"X", cid, json.dumps({"exit": status or 1}).encode()))

    def die(self) -> None:
        for proc, _, _ in self.procs.values():
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        for sub in self.subs.values():
            sub[0].stdin.close()  # its stdin at EOF: it kills its own groups
        for sub in self.subs.values():
            sub[0].wait()
        os._exit(0)


def main() -> None:
    Helper().loop()


if __name__ == "__main__":
    SOURCE = globals().get("S", SOURCE)  # the bootstrap's copy of this text
    main()
