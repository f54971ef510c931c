"""`import asyncssh`, without paying ~15 ms of subprocesses to learn that liboqs is not installed,
nor ~20 ms for X.509 support that SSH as OpenSSH speaks it never uses.

At import, `asyncssh/crypto/pq.py` looks for liboqs (the only provider of the sntrup761
post-quantum key exchange) with `ctypes.util.find_library("oqs")`, then `("liboqs")`. On Linux
each call that finds nothing runs `/sbin/ldconfig -p`, then `gcc -Wl,-t -l…`, then `ld -t -l…`:
six processes, ~15 ms of a ~250 ms one-step `runbook run`. asyncssh offers no setting to skip
the probe.

So, for the duration of that one import, `find_library` answers "not found" for exactly those two
names when a cheap scan shows that none of its three methods could find anything: no
`lib{name}.` entry in the dynamic loader's cache (`/etc/ld.so.cache`, what `ldconfig -p`
prints), and no `lib{name}.*` file in `$LD_LIBRARY_PATH`, `$LIBRARY_PATH` or the directories gcc
and ld search by default. On any sign of the library, or if the loader cache cannot be read
(not glibc), the real `find_library` runs, so where liboqs is installed asyncssh finds it and
offers sntrup761 exactly as before. Every other name goes to the real function; the original is
restored as soon as asyncssh is imported. Other operating systems are left alone.

X.509 certificates as SSH keys (RFC 6187: `x509v3-*` algorithms) are an asyncssh extra: OpenSSH
has its own certificates and no X.509. Loading asyncssh's support imports `cryptography.x509`
(~20 ms of every SSH run here). asyncssh treats that module as optional (`except ImportError`),
so it is marked absent for the import: `x509v3-*` keys and host keys are not offered. OpenSSH
certificates (`*-cert-v01@openssh.com`) are not affected.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import functools
import os
import sys
from collections.abc import Iterator

__all__ = ["asyncssh"]  # ssh.py: `from runner.execution.executors._asyncssh_import import asyncssh`

_PROBED = ("oqs", "liboqs")  # the names asyncssh.crypto.pq asks for
_LOADER_CACHE = "/etc/ld.so.cache"


def _library_dirs() -> list[str]:
    """Where ldconfig, gcc or ld (as ctypes.util runs them) could find a library."""
    arch = getattr(sys.implementation, "_multiarch", None) or ""
    dirs = [
        d
        for var in ("LD_LIBRARY_PATH", "LIBRARY_PATH")
        for d in os.environ.get(var, "").split(":")
        if d
    ]
    for prefix in ("/", "/usr/", "/usr/local/"):
        dirs += [f"{prefix}lib", f"{prefix}lib64"]
        if arch:
            dirs.append(f"{prefix}lib/{arch}")
    if arch:
        dirs += [f"/usr/{arch}/lib", f"/usr/{arch}/lib64"]
        with contextlib.suppress(OSError):  # gcc's own directories, /usr/lib/gcc/ARCH/VERSION
            gcc = f"/usr/lib/gcc/{arch}"
            dirs += [os.path.join(gcc, v) for v in os.listdir(gcc)]
    return dirs


@functools.cache
def _where_libraries_are() -> tuple[bytes, frozenset[str]] | None:
    """The loader cache's bytes and every file name in the library directories (read once for
    both probed names); None if there is no readable loader cache."""
    try:
        with open(_LOADER_CACHE, "rb") as f:
            loader_cache = f.read()
    except OSError:
        return None
    names: set[str] = set()
    for d in _library_dirs():
        with contextlib.suppress(OSError):
            names.update(os.listdir(d))
    return loader_cache, frozenset(names)


def _certainly_absent(name: str) -> bool:
    known = _where_libraries_are()
    if known is None:
        return False
    loader_cache, files = known
    prefix = f"lib{name}."
    return prefix.encode() not in loader_cache and not any(f.startswith(prefix) for f in files)


@contextlib.contextmanager
def _quick_oqs_probe() -> Iterator[None]:
    if not sys.platform.startswith("linux"):
        yield
        return
    real = ctypes.util.find_library

    def find_library(name: str) -> str | None:
        if name in _PROBED and _certainly_absent(name):
            return None
        return real(name)

    ctypes.util.find_library = find_library
    try:
        yield
    finally:
        ctypes.util.find_library = real


_X509 = "asyncssh.crypto.x509"

with _quick_oqs_probe():
    sys.modules.setdefault(_X509, None)  # type: ignore[arg-type]  # absent: see above
    import asyncssh
