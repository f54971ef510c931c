"""Run locks: one run of a runbook on a set of targets at a time.

A lock file holds who took it (pid, OS user, machine, run id, since) and which process that was:
the machine's boot id and the process's start time, since a pid alone names another process once
it is reused (after a reboot, the crash resume is for, or in time). A lock whose holder is gone
(same machine: restarted since, pid not alive, or the pid now another process's) is taken over,
and the takeover is recorded with the reason.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from runner.audit.journal import current_actor, now
from runner.errors import StateError, UsageError
from runner.safefs import open_beneath


def lock_path(state_dir: Path, runbook: str, hosts: list[str]) -> Path:
    key = hashlib.sha256("\n".join(sorted(hosts)).encode()).hexdigest()[:12]
    return state_dir / "locks" / f"{runbook}-{key}.lock"


_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _boot() -> str | None:
    try:
        return _BOOT_ID.read_text().strip() or None
    except OSError:  # not Linux: the pid check alone
        return None


def _process(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of a process (/proc/PID/stat), or None when
    there is none. OSError when we cannot tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone before, or while, it was read
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the name, in parentheses, may hold anything
    return fields[0], int(fields[19])


def _identity() -> dict[str, Any]:
    """This process as its lock names it: the boot it runs in and when it started (nothing where
    /proc cannot say)."""
    boot = _boot()
    try:
        process = _process(os.getpid())
    except (OSError, ValueError, IndexError):
        process = None
    return {"boot": boot, "started": process[1]} if boot and process else {}


def _gone(holder: dict[str, Any]) -> str | None:
    """Why the lock's holder cannot be running any more, or None if it may be."""
    if "note" in holder:
        return "the lock file is not a lock"  # never written by acquire: nobody to wait for
    if holder.get("machine") != socket.gethostname():
        return None  # another machine's process: we cannot tell
    boot = _boot()
    if boot and holder.get("boot") not in (None, boot):
        return "the machine restarted since it was taken"
    try:
        process = _process(_pid(holder))
    except (OSError, ValueError, IndexError):  # cannot tell: never take over a live run's
        return None
    if process is None or process[0] == "Z":
        return "its process is gone"
    if boot and holder.get("boot") == boot and holder.get("started") not in (None, process[1]):
        return "its pid now runs another process"
    return None


class Lock:
    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self.taken_over: dict[str, Any] | None = None
        self.reason = ""  # why the previous holder's lock was taken over

    def acquire(self) -> Lock:
        """Written whole, then linked into place: a reader never sees a lock half-written (it used
        to be created empty and filled afterwards; a concurrent run read it empty, called it
        unreadable and took it over). Taking over a dead holder's lock happens under a guard
        flock, after reading the holder again: two runs cannot both take over one lock."""
        me = {
            "pid": os.getpid(),
            "machine": socket.gethostname(),
            "user": current_actor()["user"],
            "run_id": self.run_id,
            "since": now(),
        }
        me.update(_identity())
        root = self.path.parent.parent  # the state dir: nothing below it is followed
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd, _ = open_beneath(root, tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(me, f)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:  # a full disk: nothing has run yet
                raise StateError(f"cannot write the lock {tmp}: {exc.strerror or exc}") from None
            for _ in range(3):
                if self._link(tmp):
                    return self
                holder = self._holder()
                if holder is None:
                    continue  # released (or being taken over) meanwhile: try again
                reason = _gone(holder)
                if reason is None:
                    raise UsageError(
                        f"locked: run {holder.get('run_id')} by {holder.get('user')} on "
                        f"{holder.get('machine')} (pid {holder.get('pid')}) holds this runbook on "
                        f"these targets since {holder.get('since')}"
                    )
                if self._take_over(root, holder, tmp):
                    self.reason = reason
                    return self
        finally:
            tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot take the lock {self.path}")

    def _link(self, tmp: Path) -> bool:
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            return False
        except OSError as exc:
            raise StateError(f"cannot take the lock {self.path}: {exc.strerror or exc}") from None
        return True

    def _take_over(self, root: Path, dead: dict[str, Any], tmp: Path) -> bool:
        gfd, _ = open_beneath(root, self.path.parent / ".takeover", os.O_WRONLY)
        try:
            fcntl.flock(gfd, fcntl.LOCK_EX)
            if self._holder() != dead:
                return False  # someone else took it over, or it was released: look again
            self.path.unlink(missing_ok=True)
            if not self._link(tmp):
                return False
            self.taken_over = dead
            return True
        finally:
            os.close(gfd)

    def _holder(self) -> dict[str, Any] | None:
        """Who holds the lock; {"note": ...} for a file that is not a lock (never written by
        acquire: a lock is linked into place whole); None when there is no lock."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError:
            return {"note": "unreadable lock file"}
        with os.fdopen(fd) as f:
            try:
                data = json.load(f)
            except ValueError:
                return {"note": "unreadable lock file"}
        return data if isinstance(data, dict) else {"note": "unreadable lock file"}

    def release(self) -> None:
        holder = self._holder()
        if holder and holder.get("pid") == os.getpid() and holder.get("run_id") == self.run_id:
            self.path.unlink(missing_ok=True)


def _pid(holder: dict[str, Any]) -> int:
    try:
        return int(holder.get("pid", 0))
    except (TypeError, ValueError):
        return 0
