"""What a run records: one frozen dataclass per kind of event. The engine and the commands emit
these (through events.Bus, which masks secrets); the journal, the console and the other
subscribers receive them.

An event declares what its record holds: every field goes to the journal except those marked
`LOCAL` (for this process's subscribers only), a field marked `OPTIONAL` is left out of the
record while it has its default, and a field may give its record's key (`from`, a keyword).
Here: the base, and the events of a run, its hosts and batches; the events about steps are
stepevents.py's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

OPTIONAL = {"optional": True}  # a field recorded only when it differs from its default
LOCAL = {"local": True}  # a field for subscribers in this process, never journaled

# per event class, each field's (name, key, optional, default, local): its metadata read once,
# not at every event by every subscriber (a run's events are most of its per-step work)
Layout = tuple[tuple[str, str, bool, Any, bool], ...]
_LAYOUTS: dict[type, Layout] = {}


def _layout(cls: type) -> Layout:
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = tuple(
            (
                f.name,
                f.metadata.get("key", f.name),
                bool(f.metadata.get("optional")),
                f.default,
                bool(f.metadata.get("local")),
            )
            for f in dataclasses.fields(cls)
        )
    return layout


@dataclass(frozen=True, eq=False, repr=False)
class Event:
    """Events are messages: compared by identity, shown by their fields. (`eq` and `repr` of
    each of ~40 classes would be two more generated methods apiece, ~5 ms of every start.)"""

    KIND: ClassVar[str] = ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.fields())!r})"

    @property
    def kind(self) -> str:
        return self.KIND

    def fields(self) -> Mapping[str, Any]:
        """Every field a subscriber sees (the journal's record plus the local ones); built once
        per event (it is frozen), shared by every subscriber: read-only."""
        known: Mapping[str, Any] | None = self.__dict__.get("_fields")
        if known is None:
            known = self.__dict__["_fields"] = self._collect(local=True)
        return known

    def record(self) -> dict[str, Any]:
        """What the journal holds of the event."""
        return self._collect(local=False)

    def _collect(self, *, local: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, key, optional, default, is_local in _layout(type(self)):
            value = getattr(self, name)
            if (optional and value == default) or (is_local and not local):
                continue
            out[key] = value
        return out

    def masked(self, mask: Callable[[Any], Any]) -> Event:
        return dataclasses.replace(
            self, **{f.name: mask(getattr(self, f.name)) for f in dataclasses.fields(self)}
        )


# --- a run opens and closes ------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class RunOpened(Event):
    """run.started, run.resumed or check.started: what the command runs, and with what."""

    event: str
    data: dict[str, Any]
    run_id: str = field(default="", metadata=LOCAL)

    @property
    def kind(self) -> str:
        return self.event

    def fields(self) -> Mapping[str, Any]:
        return {**self.data, "run_id": self.run_id}

    def record(self) -> dict[str, Any]:
        return dict(self.data)


@dataclass(frozen=True, eq=False, repr=False)
class RunState(Event):
    """The run's lifecycle moved (lifecycle.py)."""

    KIND = "run.state"
    state: str
    reason: str
    by: str
    phase: str
    exit_code: int
    from_: str | None = field(metadata={"key": "from"})  # `from` is a keyword


@dataclass(frozen=True, eq=False, repr=False)
class RunFinished(Event):
    KIND = "run.finished"
    outcome: str | None
    exit_code: int
    duration: float
    planned: list[str]  # every host of the plan: the recap names those never started
    hosts: dict[str, Any]


@dataclass(frozen=True, eq=False, repr=False)
class RunAborted(Event):
    KIND = "run.aborted"
    host: str
    reason: str


@dataclass(frozen=True, eq=False, repr=False)
class RunError(Event):
    KIND = "run.error"
    reason: str


@dataclass(frozen=True, eq=False, repr=False)
class LockTakenOver(Event):
    KIND = "lock.taken_over"
    previous: Any
    reason: str


@dataclass(frozen=True, eq=False, repr=False)
class Interrupted(Event):
    KIND = "interrupt"
    signal: str
    first: bool
    then: str


@dataclass(frozen=True, eq=False, repr=False)
class Confirmed(Event):
    """A question answered: a step's confirm:, a batch gate, rolling back after an interrupt."""

    KIND = "confirm"
    question: str
    answer: bool | None
    via: str
    host: str = field(default="", metadata=OPTIONAL)
    step: str = field(default="", metadata=OPTIONAL)
    hosts: list[str] | None = field(default=None, metadata=OPTIONAL)


# --- hosts and batches -----------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class HostNotice(Event):
    """Something the executor noticed about a host (a remote helper that could not start...)."""

    KIND = "host.notice"
    host: str
    message: str


@dataclass(frozen=True, eq=False, repr=False)
class HostExcluded(Event):
    KIND = "host.excluded"
    host: str
    reason: str


@dataclass(frozen=True, eq=False, repr=False)
class BatchStarted(Event):
    KIND = "batch.started"
    batch: int
    hosts: list[str]


@dataclass(frozen=True, eq=False, repr=False)
class RolloutStopped(Event):
    KIND = "rollout.stopped"
    batch: int
    failed: int
    max_failures: int
    hosts_not_started: int
    reason: str
