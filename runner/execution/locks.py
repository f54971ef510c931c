"""Run locks: one run of a runbook on a set of targets at a time.

A lock file holds who took it (pid, OS user, machine, run id, since). A lock left by a process
that is gone (same machine, pid not alive) is taken over, and the takeover is recorded.
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


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone before, or while, it was read
        return False
    except OSError:  # cannot tell: keep the lock, never take over a live run's
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Lock:
    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self.taken_over: dict[str, Any] | None = None

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
                junk = "note" in holder  # not a lock acquire wrote: nobody to wait for
                if not junk and (holder.get("machine") != me["machine"] or _alive(_pid(holder))):
                    raise UsageError(
                        f"locked: run {holder.get('run_id')} by {holder.get('user')} on "
                        f"{holder.get('machine')} (pid {holder.get('pid')}) holds this runbook on "
                        f"these targets since {holder.get('since')}"
                    )
                if self._take_over(root, holder, tmp):
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
