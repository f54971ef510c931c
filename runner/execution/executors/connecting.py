"""Opening an SSH executor's connection, and the one-line reason when it cannot be opened."""

from __future__ import annotations

import asyncio
import glob
import shlex
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runner.execution.executors._asyncssh_import import asyncssh
from runner.execution.executors.base import ConnectionFailed
from runner.execution.executors.hostkeys import HostKeys, host_key_problem, known_hosts

if TYPE_CHECKING:
    from runner.execution.executors.ssh import SSHExecutor


# OpenSSH's default ciphers, AES-GCM first: every server CPU of the last decade does AES in
# hardware, and asyncssh's chacha20-poly1305 makes three cipher contexts per packet where GCM
# makes one (15 us a packet against 2.4 us here: ~4% of a 20-host run; bench/README.md).
# An ssh_config that names Ciphers (itself or in a file it includes) still chooses.
CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)


def ciphers(config: Path | None) -> Sequence[str]:
    """CIPHERS, unless the ssh_config, or a file it includes, has a `Ciphers` line: then () leaves
    the choice to the config (and asyncssh's defaults)."""
    return () if config is not None and _names_ciphers(config, 0) else CIPHERS


def _names_ciphers(config: Path, depth: int) -> bool:
    """Whether the file (or one it includes) may choose ciphers: a `Ciphers` line, or a file we
    cannot read or follow (then it may, as far as we know)."""
    try:
        lines = config.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return True  # asyncssh reads it next and says what is wrong
    for line in lines:
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            return True
        key, _, first = (words[0] if words else "").partition("=")
        if key.lower() == "ciphers":
            return True
        if key.lower() == "include":  # as asyncssh reads it: relative to ~/.ssh
            if depth >= 8:
                return True
            for pattern in ([first] if first else []) + words[1:]:
                where = Path(pattern).expanduser()
                where = where if where.is_absolute() else Path("~/.ssh").expanduser() / where
                if any(_names_ciphers(Path(f), depth + 1) for f in glob.glob(str(where))):
                    return True
    return False


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
            encryption_algs=ciphers(ex.ssh_config),
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
