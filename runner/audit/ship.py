"""Shipping every journal record, unchanged, to the log pipeline a team already runs.

Each record goes as one RFC 5424 syslog message over TCP (RFC 6587 octet counting; TLS with
`tls://`): `<134>1 TS HOST runbook - EVENT [runbook@32473 journal="runs/x.jsonl" seq="3"] LINE`,
where LINE is the record's canonical JSON exactly as the journal holds it, so the collected copy
verifies like the original (`audit verify --collected FILE`).

How far each journal was shipped is kept in `<state>/ship/<target>.json` (records and bytes).
It advances only once the collector has read a batch: we close our side and wait for the
collector to close its own, which it does after reading everything we sent. A restart therefore
loses nothing; a crash between the collector's read and our position write resends that batch,
and the verifier counts identical copies of a record once. Shipping never blocks or fails a run
(`LiveShipper`): an unreachable collector is retried, and `audit ship` catches up.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runner.audit.journal import KINDS, list_journals, relative_name
from runner.audit.ledger import ledger_path
from runner.errors import UsageError
from runner.execution.eventkinds import Event

SD_ID = "runbook@32473"  # 32473: the enterprise number RFC 5612 reserves for examples
PRI = 134  # facility local0, severity informational
BATCH = 500  # records per connection
ROUNDS_APART = 0.2  # seconds, at least, between two rounds of live shipping


class ShipError(Exception):
    """The collector could not be reached or did not take a batch; nothing was marked sent."""


@dataclass(frozen=True)
class Target:
    scheme: str  # tcp | tls
    host: str
    port: int
    ca: str | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9.-]", "_", f"{self.scheme}-{self.host}-{self.port}")


def target(text: str | None, ca: str | None = None) -> Target:
    """`tcp://HOST:PORT` or `tls://HOST:PORT` (`--to`, else RUNBOOK_SHIP_TO)."""
    text = text or os.environ.get("RUNBOOK_SHIP_TO")
    if not text:
        raise UsageError("audit ship: give --to tcp://HOST:PORT (or tls://), or RUNBOOK_SHIP_TO")
    u = urlsplit(text)
    if u.scheme not in ("tcp", "tls") or not u.hostname or not u.port:
        raise UsageError(f"'{text}' is not a collector: tcp://HOST:PORT or tls://HOST:PORT")
    return Target(u.scheme, u.hostname, u.port, ca or os.environ.get("RUNBOOK_SHIP_CA"))


@dataclass
class Pending:
    journal: str  # relative to the state dir
    records: int  # shipped so far
    offset: int  # bytes shipped so far
    frames: list[bytes]
    ends: list[tuple[int, int]]  # (records, offset) after each frame


def frame(journal: str, line: bytes) -> bytes:
    """One record as an octet-counted RFC 5424 message; `line` is sent byte for byte."""
    rec = json.loads(line)
    host = _printable(str((rec.get("actor") or {}).get("host") or "-"), 255)
    msgid = _printable(str(rec.get("event") or "-"), 32)
    params = f'journal="{_sd_escape(journal)}" seq="{rec.get("seq")}"'
    head = f"<{PRI}>1 {rec.get('ts') or '-'} {host} runbook - {msgid} [{SD_ID} {params}] "
    msg = head.encode() + line
    return str(len(msg)).encode() + b" " + msg


def _printable(text: str, limit: int) -> str:
    return re.sub(r"[^\x21-\x7e]", "_", text)[:limit] or "-"


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _journals(state_dir: Path) -> list[str]:
    names = [relative_name(state_dir, p) for _, p in list_journals(state_dir, KINDS)]
    ledger = ledger_path(state_dir)
    return names + ([relative_name(state_dir, ledger)] if ledger.exists() else [])


def pending(
    state_dir: Path, position: dict[str, Any], only: list[str] | None = None
) -> Iterator[Pending]:
    """What each journal (or each of `only`) holds beyond its shipped position: complete lines
    only."""
    for name in _journals(state_dir) if only is None else only:
        seen = position.get(name, {"records": 0, "offset": 0})
        path = state_dir / name
        try:
            with path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() < seen["offset"]:
                    raise ShipError(f"{name} is shorter than what was shipped: it was rewritten")
                f.seek(seen["offset"])
                data = f.read()
        except FileNotFoundError:
            continue
        cut = data.rfind(b"\n") + 1  # a line still being written waits for the next round
        if cut == 0:
            continue
        p = Pending(name, seen["records"], seen["offset"], [], [])
        records, offset = seen["records"], seen["offset"]
        for line in data[:cut].splitlines(keepends=True):
            records, offset = records + 1, offset + len(line)
            p.frames.append(frame(name, line.rstrip(b"\n")))
            p.ends.append((records, offset))
        yield p


def ship(
    state_dir: Path,
    to: Target,
    *,
    timeout: float = 10.0,
    wait: bool = True,
    only: list[str] | None = None,
) -> int:
    """Send everything not yet shipped to `to` (of the journals `only` names, if given: names
    relative to the state dir); the number of records sent. Raises ShipError
    when the collector fails (what it took is remembered). `wait=False`: return 0 at once if
    another shipper holds the position."""
    sent = 0
    with _position_lock(state_dir, to, wait=wait) as held:
        if not held:
            return 0
        position = _read_position(state_dir, to)
        while True:
            batch: list[tuple[str, bytes, tuple[int, int]]] = []
            for p in pending(state_dir, position, only):
                for fr, end in zip(p.frames, p.ends, strict=True):
                    batch.append((p.journal, fr, end))
                    if len(batch) >= BATCH:
                        break
                if len(batch) >= BATCH:
                    break
            if not batch:
                return sent
            _send(to, b"".join(fr for _, fr, _ in batch), timeout)
            for journal, _, (records, offset) in batch:
                position[journal] = {"records": records, "offset": offset}
            _write_position(state_dir, to, position)
            sent += len(batch)
            if len(batch) < BATCH:  # that was all: no second look at every journal
                return sent


def _send(to: Target, data: bytes, timeout: float) -> None:
    """Send, close our side, and wait until the collector closes its own: it has read it all."""
    try:
        raw = socket.create_connection((to.host, to.port), timeout=timeout)
    except OSError as exc:
        raise ShipError(f"cannot reach the collector {to.url}: {exc.strerror or exc}") from None
    try:
        if to.scheme == "tls":
            ctx = ssl.create_default_context(cafile=to.ca)
            tls = ctx.wrap_socket(raw, server_hostname=to.host)
            tls.sendall(data)
            raw = tls.unwrap()  # our close_notify; then the TCP half-close below
        else:
            raw.sendall(data)
        raw.shutdown(socket.SHUT_WR)
        while raw.recv(4096):
            pass
    except (OSError, ssl.SSLError) as exc:
        raise ShipError(f"the collector {to.url} did not take the records: {exc}") from None
    finally:
        raw.close()


def _position_file(state_dir: Path, to: Target) -> Path:
    return state_dir / "ship" / f"{to.slug}.json"


def _read_position(state_dir: Path, to: Target) -> dict[str, Any]:
    try:
        doc = json.loads(_position_file(state_dir, to).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return dict(doc.get("journals", {}))


def _write_position(state_dir: Path, to: Target, position: dict[str, Any]) -> None:
    from runner.safefs import write_file

    doc = json.dumps({"target": to.url, "journals": position}, sort_keys=True)
    # never half a position (a temp file renamed: a crash keeps the previous one), never
    # written through a symlink planted in the state dir
    write_file(_position_file(state_dir, to), doc.encode("utf-8"), 0o600, root=state_dir)


@contextmanager
def _position_lock(state_dir: Path, to: Target, *, wait: bool) -> Iterator[bool]:
    from runner.safefs import open_beneath

    path = _position_file(state_dir, to)
    fd, _ = open_beneath(state_dir, path.with_suffix(".lock"), os.O_WRONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


class LiveShipper:
    """Ships as records are written (RUNBOOK_SHIP_TO), from a thread: a run never waits for the
    collector, and an outage never fails it; the next round, or `audit ship`, catches up.

    Its first round that reaches the collector sends whatever any journal holds that was not
    sent; the later ones (one per sync of the run, at most) look only at `mine`, the journals
    this command writes: reading every journal of a state dir of years each time cost more
    than the run."""

    def __init__(self, state_dir: Path, to: Target, mine: list[str]) -> None:
        self.state_dir, self.to, self.mine = state_dir, to, mine
        self._caught_up = False  # a round over every journal has reached the collector
        self._stop = threading.Event()  # set by close: the last round, at once
        self._last = 0.0  # when the last round began (monotonic)
        self.error = ""
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runbook-ship", daemon=True)
        self._thread.start()

    shows_output = False  # events.Bus: no live output to mask for us

    def event(self, e: Event) -> None:
        self._wake.set()  # subscribed after the journal: the record is written by now, or ...

    def sync(self) -> None:
        self._wake.set()  # ... at the journal's next sync (a run's journal: groupcommit.py)

    def output(self, host: str, step: str, stream: str, text: str) -> None:
        return None

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            # ROUNDS_APART at least from one round to the next: each rewrites the position
            # file, as long as the state dir has journals (the round at close goes at once)
            self._stop.wait(max(0.0, self._last + ROUNDS_APART - time.monotonic()))
            self._last = time.monotonic()
            self._wake.clear()
            closing = self._stop.is_set()
            only = self.mine if self._caught_up else None
            try:
                ship(self.state_dir, self.to, timeout=2.0, wait=closing, only=only)
                self._caught_up, self.error = True, ""
            except (ShipError, OSError) as exc:
                self.error = str(exc)
                if not closing:
                    time.sleep(1.0)  # not once per record against a collector that is down
            if closing:
                return

    def close(self, grace: float = 5.0) -> None:
        """One last round (the ledger's seal is written by now), for at most `grace` seconds."""
        self._stop.set()
        self._wake.set()
        self._thread.join(grace)
        if self._thread.is_alive():
            self.error = self.error or f"the collector {self.to.url} is slow"
        if self.error:
            print(
                f"runbook: shipping: {self.error}; `runbook audit ship` sends the rest later",
                file=sys.stderr,
            )


def live(state_dir: Path, journal: Path) -> LiveShipper | None:
    """The live shipper when RUNBOOK_SHIP_TO names a collector, for a command writing `journal`
    (and the ledger)."""
    if not os.environ.get("RUNBOOK_SHIP_TO"):
        return None
    mine = [relative_name(state_dir, p) for p in (journal, ledger_path(state_dir))]
    return LiveShipper(state_dir, target(None), mine)
