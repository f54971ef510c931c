"""A collector's copy of the journals (what `audit ship` sent, as rsyslog wrote it with the
RSYSLOG_SyslogProtocol23Format template) turned back into a state dir, to verify it as such.

Each message names its journal and seq in its structured data and carries the record's line
unchanged after it. Other messages in the same file are ignored. A record received twice (a
batch resent after a crash) is counted once; two different records with one journal and seq
are a problem, as is a record missing (the chain of what remains shows the gap).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from runner.audit.ship import SD_ID
from runner.errors import UsageError

_SD = re.compile(
    rb"\[" + re.escape(SD_ID.encode()) + rb' journal="((?:[^"\\\]]|\\.)*)" seq="([0-9]+)"\] '
)


def rebuild(file: Path, into: Path) -> list[str]:
    """Write each journal found in `file` under `into`; the problems met."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
    journals: dict[str, dict[int, bytes]] = {}
    problems: list[str] = []
    for number, raw in enumerate(data.splitlines(), start=1):
        m = _SD.search(raw)
        if m is None:
            continue
        name = re.sub(rb"\\(.)", rb"\1", m.group(1)).decode("utf-8", errors="replace")
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not name.endswith(".jsonl"):
            problems.append(f"{file}:{number}: a journal name that is not ours: {name!r}")
            continue
        seq, line = int(m.group(2)), raw[m.end() :]
        seen = journals.setdefault(name, {})
        if seq in seen and seen[seq] != line:
            problems.append(f"{file}:{number}: a second, different record {seq} of {name}")
            continue
        seen[seq] = line
    for name, records in journals.items():
        path = into / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(records[s] + b"\n" for s in sorted(records)))
    if not journals:
        problems.append(f"{file}: no runbook records (is it the collector's file?)")
    return problems
