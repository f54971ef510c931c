"""Opening state files as someone who can write the state dir would not like: no symlink followed
below the state dir, and every file and directory created with its mode, whatever the umask.

Whoever can write the state dir (another operator, a compromised account) could plant
`ledger.jsonl -> /etc/passwd` or `runs -> /root`, and the next run (as root, say) would truncate and
append to the victim. So each directory below the root is opened with O_NOFOLLOW|O_DIRECTORY,
one at a time, the next one relative to it (openat), and the file itself with O_NOFOLLOW: nothing
is re-resolved between the check and the use. The root (the state dir itself) may be a symlink:
that is the operator's own choice, made before anyone else could write in it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from runner.errors import StateError

DIR_MODE = 0o700  # the audit log, locks and plans are nobody else's business
FILE_MODE = 0o600


def open_beneath(
    root: Path | None, path: Path, flags: int, mode: int = FILE_MODE
) -> tuple[int, bool]:
    """(fd, created) of `path`, which lies below `root` (None: its own directory is the root).
    Missing directories are made with DIR_MODE, a created file gets `mode` exactly."""
    dfd = _parent(root, path)
    try:
        return _open_file(dfd, path.name, path, flags, mode)
    finally:
        os.close(dfd)


def write_file(path: Path, data: bytes, mode: int, root: Path | None = None) -> None:
    """Write a whole file (a plan, an export) to `path`, not to where a symlink there points,
    with exactly `mode` and owned by us: through a new temp file in the same directory, renamed
    over it. `root`: as for open_beneath (a file of the state dir: the state dir).

    The temp file is always a new one (O_EXCL|O_NOFOLLOW), under a name nobody can guess.
    Output files often go to a directory others may write (a shared review dir, /tmp), where a
    name like `.plan.json.PID.tmp` could be made in advance by another user, and was then written
    and renamed into place as theirs, mode 0666."""
    dfd = _parent(root, path)
    try:
        tmp, fd = _new_temp(dfd, path)
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), mode)  # the mode given to open is cut by the umask
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            # rename replaces a symlink itself, never its target; relative to the directory we
            # checked, not a path resolved again
            os.replace(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
            os.fsync(dfd)  # the new name survives a crash
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise StateError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        os.close(dfd)


def _parent(root: Path | None, path: Path) -> int:
    """A descriptor of `path`'s directory, reached from `root` without following a symlink."""
    base = path.parent if root is None else root
    parts = path.relative_to(base).parts
    try:
        base.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        dfd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise StateError(f"cannot open {base}: {exc.strerror or exc}") from None
    try:
        for part in parts[:-1]:
            nfd = _subdir(dfd, part, base)
            os.close(dfd)
            dfd = nfd
    except BaseException:
        os.close(dfd)
        raise
    return dfd


def _new_temp(dfd: int, path: Path) -> tuple[str, int]:
    """(name, fd) of a file just created in `dfd`: ours, empty, 0600 or less."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):  # a name taken already (astronomically unlikely): another name
        name = f".{path.name[:100]}.{secrets.token_hex(8)}.tmp"
        try:
            return name, os.open(name, flags, 0o600, dir_fd=dfd)  # private until written
        except FileExistsError:
            continue
        except OSError as exc:
            raise StateError(_refusal(path.parent, name, exc)) from None
    raise StateError(f"cannot write {path}: no free temp name in {path.parent}")


def _subdir(dfd: int, part: str, base: Path) -> int:
    try:
        try:
            os.mkdir(part, DIR_MODE, dir_fd=dfd)
            created = True
        except FileExistsError:
            created = False
        nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        if created:
            os.fchmod(nfd, DIR_MODE)  # mkdir's mode is cut by the umask
            os.fsync(dfd)
    except OSError as exc:
        raise StateError(_refusal(base, part, exc)) from None
    return nfd


def _open_file(dfd: int, name: str, path: Path, flags: int, mode: int) -> tuple[int, bool]:
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            fd = os.open(name, flags | os.O_CREAT | os.O_EXCL, mode, dir_fd=dfd)
        except FileExistsError:
            return os.open(name, flags, dir_fd=dfd), False
        os.fchmod(fd, mode)  # the mode given to open is cut by the umask
        os.fsync(dfd)  # the new name survives a crash
        return fd, True
    except OSError as exc:
        raise StateError(_refusal(path.parent, name, exc)) from None


def _refusal(parent: Path, name: str, exc: OSError) -> str:
    import errno

    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return (
            f"{parent / name} is a symbolic link (or not what the state dir holds there): "
            "refusing to follow it; someone who can write the state dir planted it?"
        )
    return f"cannot open {parent / name}: {exc.strerror or exc}"
