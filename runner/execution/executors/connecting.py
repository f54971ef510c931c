"""Opening an SSH executor's connection, and the one-line reason when it cannot be opened."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

from runner.execution.executors._asyncssh_import import asyncssh
from runner.execution.executors.base import ConnectionFailed
from runner.execution.executors.hostkeys import HostKeys, host_key_problem, known_hosts

if TYPE_CHECKING:
    from runner.execution.executors.ssh import SSHExecutor


async def open_connection(ex: SSHExecutor) -> asyncssh.SSHClientConnection:
    """The host's SSH connection, its key checked against known_hosts; ConnectionFailed with a
    one-line reason otherwise (refused, timed out, unknown or changed key, bad credentials)."""
    try:
        known = known_hosts(ex.known_hosts)
    except (OSError, ValueError) as exc:
        raise ConnectionFailed(f"{ex.name}: cannot read {ex.known_hosts}: {exc}") from None
    policy = HostKeys(known, ex.known_hosts, ex.accept_new_host_keys)
    where = f"{ex.address}:{ex.port}" if ex.port else ex.address
    try:
        return await asyncssh.connect(
            ex.address,
            port=ex.port if ex.port is not None else (),
            username=ex.user if ex.user is not None else (),
            client_keys=[str(ex.key)] if ex.key else (),
            known_hosts=known,
            config=[str(ex.ssh_config)] if ex.ssh_config else None,
            client_factory=lambda: policy,
            server_host_keys_handler=policy.host_keys_sent,
            connect_timeout=ex.connect_timeout,
            keepalive_interval=ex.keepalive_interval,
            keepalive_count_max=ex.keepalive_count_max,
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        raise ConnectionFailed(
            host_key_problem(ex.name, ex.known_hosts, policy, where, exc)
        ) from None
    except asyncssh.PermissionDenied as exc:
        why = f"authentication failed ({exc.reason})"
    except (asyncio.TimeoutError, TimeoutError):
        why = f"timed out connecting to {where} after {ex.connect_timeout:g}s"
    except ConnectionRefusedError:
        why = f"connection refused by {where}"
    except socket.gaierror as exc:
        why = f"cannot resolve {ex.address}: {exc.strerror}"
    except OSError as exc:
        if exc.filename:  # a key or config file, not the network
            why = f"cannot read {exc.filename}: {exc.strerror}"
        else:
            why = f"cannot connect to {where}: {exc.strerror or exc}"
    except asyncssh.KeyImportError as exc:
        why = f"cannot load client key: {exc}"
    except ValueError as exc:  # e.g. asyncssh.ConfigParseError
        why = f"invalid SSH settings: {str(exc).splitlines()[0]}"
    except asyncssh.Error as exc:
        why = f"SSH error from {where}: {exc.reason}"
    raise ConnectionFailed(f"{ex.name}: {why}")
