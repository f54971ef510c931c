"""Run locks: one run of a runbook on a set of targets at a time.

A lock file holds who took it (pid, OS user, machine, run id, since). A lock left by a process
that is gone (same machine, pid not alive) is taken over, and the takeover is recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from runner.audit import current_actor, now
from runner.errors import UsageError


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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {
            "pid": os.getpid(),
            "machine": socket.gethostname(),
            "user": current_actor()["user"],
            "run_id": self.run_id,
            "since": now(),
        }
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                holder = self._holder()
                if holder and (
                    holder.get("machine") != me["machine"] or _alive(int(holder.get("pid", 0)))
                ):
                    raise UsageError(
                        f"locked: run {holder.get('run_id')} by {holder.get('user')} on {holder.get('machine')} "
                        f"(pid {holder.get('pid')}) holds this runbook on these targets since {holder.get('since')}"
                    ) from None
                self.taken_over = holder or {"note": "unreadable lock file"}
                self.path.unlink(missing_ok=True)  # left by a dead process: take it over
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            return self
        raise UsageError(f"cannot take the lock {self.path}")

    def _holder(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def release(self) -> None:
        holder = self._holder()
        if holder and holder.get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
