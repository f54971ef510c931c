"""One executor per host, created on first use and closed once at the end of the run.

The engine holds a host's fork slot while it works on the host (`hold`/`release`). A host's
connection stays open after its slot is released, so the next phase on that host (steps after
preconditions, a batch rollback) reuses it; but before a host without an open connection starts,
idle connections are closed, oldest first, so that at most `limit` (`--forks`) are ever open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from runner.execution.executors.base import Executor
from runner.format.inventory import Host, Inventory


class Executors:
    def __init__(
        self,
        inventory: Inventory,
        *,
        accept_new_host_keys: bool = False,
        notify: Callable[[str, str], None] | None = None,  # (host, message): e.g. no SSH helper
    ) -> None:
        self.inventory = inventory
        self.accept_new = accept_new_host_keys
        self.notify = notify
        self._by_host: dict[str, Executor] = {}
        self._held: set[str] = set()
        self._idle: list[str] = []  # hosts with an executor and no slot, least recently used first
        self._lock = asyncio.Lock()

    def get(self, host: Host) -> Executor:
        ex = self._by_host.get(host.name)
        if ex is None:
            ex = self._make(host)
            self._by_host[host.name] = ex
        return ex

    async def hold(self, host: Host, limit: int) -> None:
        """The engine starts work on host: make room for its connection among `limit`.

        Serialised: while one hold awaits the close of an idle connection, another must not
        count that connection as gone. Every held host counts as a connection to come, since
        executors connect lazily, after hold returns.
        """
        async with self._lock:
            self._held.add(host.name)
            if host.name in self._idle:
                self._idle.remove(host.name)
            while self._idle and len(self._by_host.keys() | self._held) > limit:
                await self._by_host.pop(self._idle.pop(0)).close()

    def release(self, host: Host) -> None:
        self._held.discard(host.name)
        if host.name in self._by_host and host.name not in self._idle:
            self._idle.append(host.name)

    def _make(self, host: Host) -> Executor:
        if host.connection == "local":
            from runner.execution.executors.local import LocalExecutor

            return LocalExecutor(host.name)
        from runner.execution.executors.ssh import SSHExecutor

        return SSHExecutor(
            **ssh_settings(self.inventory, host),
            accept_new_host_keys=self.accept_new,
            notify=self._notify_for(host.name),
        )

    def _notify_for(self, name: str) -> Callable[[str], None] | None:
        notify = self.notify
        return None if notify is None else (lambda text: notify(name, text))

    def hurry(self) -> None:
        """A second interrupt: commands still to be killed get no grace."""
        for ex in self._by_host.values():
            ex.hurry()

    async def close(self) -> None:
        executors, self._by_host, self._idle = list(self._by_host.values()), {}, []
        for ex in executors:
            await ex.close()


def ssh_settings(inventory: Inventory, host: Host) -> dict[str, Any]:
    """How to reach `host` over SSH: its own settings, else the inventory's `ssh:` defaults (the
    SSHExecutor's keyword arguments)."""
    s = inventory.ssh
    return {
        "name": host.name,
        "address": host.address or host.name,
        "port": host.port or s.port,
        "user": host.user or s.user,
        "key": host.key or s.key,
        "known_hosts": s.known_hosts,
        "ssh_config": s.config,
        "connect_timeout": s.connect_timeout,
    }
