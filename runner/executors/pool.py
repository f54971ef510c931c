"""One executor per host, created on first use and closed once at the end of the run."""

from __future__ import annotations

from typing import Any

from runner.inventory import Host, Inventory


class Executors:
    def __init__(self, inventory: Inventory, *, accept_new_host_keys: bool = False) -> None:
        self.inventory = inventory
        self.accept_new = accept_new_host_keys
        self._by_host: dict[str, Any] = {}

    def get(self, host: Host) -> Any:
        ex = self._by_host.get(host.name)
        if ex is None:
            ex = self._make(host)
            self._by_host[host.name] = ex
        return ex

    def _make(self, host: Host) -> Any:
        if host.connection == "local":
            from runner.executors.local import LocalExecutor

            return LocalExecutor(host.name)
        from runner.executors.ssh import SSHExecutor

        s = self.inventory.ssh
        return SSHExecutor(
            name=host.name,
            address=host.address or host.name,
            port=host.port or s.port,
            user=host.user or s.user,
            key=host.key or s.key,
            known_hosts=s.known_hosts,
            ssh_config=s.config,
            connect_timeout=s.connect_timeout,
            accept_new_host_keys=self.accept_new,
        )

    async def close(self) -> None:
        for ex in self._by_host.values():
            await ex.close()
