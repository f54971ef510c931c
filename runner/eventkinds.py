"""What a run records: one frozen dataclass per kind of event. The engine and the commands emit
these (through events.Bus, which masks secrets); the journal, the console and the other
subscribers receive them.

An event declares what its record holds: every field goes to the journal except those marked
`LOCAL` (for this process's subscribers only), and a field marked `OPTIONAL` is left out of
the record while it has its default. A step of a called runbook names its `caller` (the calling
step): readers of the log tell a runbook's own steps by that field, never by the shape of an id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

OPTIONAL = {"optional": True}  # a field recorded only when it differs from its default
LOCAL = {"local": True}  # a field for subscribers in this process, never journaled


@dataclass(frozen=True)
class Event:
    KIND: ClassVar[str] = ""

    @property
    def kind(self) -> str:
        return self.KIND

    def fields(self) -> dict[str, Any]:
        """Every field a subscriber sees (the journal's record plus the local ones)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("optional") and value == f.default:
                continue
            out[f.name.rstrip("_")] = value  # from_: `from` is a keyword
        return out

    def record(self) -> dict[str, Any]:
        """What the journal holds of the event."""
        hidden = {f.name for f in dataclasses.fields(self) if f.metadata.get("local")}
        return {k: v for k, v in self.fields().items() if k not in hidden}

    def masked(self, mask: Callable[[Any], Any]) -> Event:
        return dataclasses.replace(
            self, **{f.name: mask(getattr(self, f.name)) for f in dataclasses.fields(self)}
        )


# --- a run opens and closes ------------------------------------------------------------------


@dataclass(frozen=True)
class RunOpened(Event):
    """run.started, run.resumed or check.started: what the command runs, and with what."""

    event: str
    data: dict[str, Any]
    run_id: str = field(default="", metadata=LOCAL)

    @property
    def kind(self) -> str:
        return self.event

    def fields(self) -> dict[str, Any]:
        return {**self.data, "run_id": self.run_id}

    def record(self) -> dict[str, Any]:
        return dict(self.data)


@dataclass(frozen=True)
class RunState(Event):
    """The run's lifecycle moved (lifecycle.py)."""

    KIND = "run.state"
    state: str
    reason: str
    by: str
    phase: str
    exit_code: int
    from_: str | None


@dataclass(frozen=True)
class RunFinished(Event):
    KIND = "run.finished"
    outcome: str | None
    exit_code: int
    duration: float
    planned: list[str]  # every host of the plan: the recap names those never started
    hosts: dict[str, Any]


@dataclass(frozen=True)
class RunAborted(Event):
    KIND = "run.aborted"
    host: str
    reason: str


@dataclass(frozen=True)
class RunError(Event):
    KIND = "run.error"
    reason: str


@dataclass(frozen=True)
class LockTakenOver(Event):
    KIND = "lock.taken_over"
    previous: Any
    reason: str


@dataclass(frozen=True)
class Interrupted(Event):
    KIND = "interrupt"
    signal: str
    first: bool
    then: str


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class HostNotice(Event):
    """Something the executor noticed about a host (a remote helper that could not start...)."""

    KIND = "host.notice"
    host: str
    message: str


@dataclass(frozen=True)
class HostExcluded(Event):
    KIND = "host.excluded"
    host: str
    reason: str


@dataclass(frozen=True)
class BatchStarted(Event):
    KIND = "batch.started"
    batch: int
    hosts: list[str]


@dataclass(frozen=True)
class RolloutStopped(Event):
    KIND = "rollout.stopped"
    batch: int
    failed: int
    max_failures: int
    hosts_not_started: int
    reason: str


# --- steps -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepEvent(Event):
    """About one step on one host; `caller` names the calling step inside a called runbook."""

    host: str
    step: str
    caller: str | None = field(default=None, metadata=OPTIONAL, kw_only=True)


@dataclass(frozen=True)
class StepSkipped(StepEvent):
    KIND = "step.skipped"
    reason: str


@dataclass(frozen=True)
class StepOutcome(StepEvent):
    KIND = "step.outcome"
    status: str
    reason: str
    capture: dict[str, str] | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True)
class CallStarted(StepEvent):
    """A `call:` step begins: the called runbook, as it was loaded."""

    KIND = "step.started"
    command: str
    runbook_sha256: str
    kind_: str = "call"


@dataclass(frozen=True)
class ActionStarted(StepEvent):
    """An attempt of a step's action (step.started) or of an undo (rollback.started)."""

    KIND = "step.started"
    kind_: str
    attempt: int
    command: str
    name: str = field(default="", metadata=OPTIONAL)


@dataclass(frozen=True)
class UndoStarted(ActionStarted):
    KIND = "rollback.started"


@dataclass(frozen=True)
class ActionFinished(StepEvent):
    """How an attempt ended: of a step's action (step.finished), an undo (rollback.finished) or
    a check (check)."""

    KIND = "step.finished"
    attempt: int
    command: str
    ok: bool
    exit: int | None
    duration: float
    stdout: dict[str, Any]
    stderr: dict[str, Any]
    status: int | None = field(default=None, metadata=OPTIONAL)  # HTTP
    reason: str = field(default="", metadata=OPTIONAL)
    timed_out: bool = field(default=False, metadata=OPTIONAL)
    interrupted: str = field(default="", metadata=OPTIONAL)
    name: str = field(default="", metadata=OPTIONAL)
    scope: str = field(default="", metadata=OPTIONAL)


@dataclass(frozen=True)
class UndoFinished(ActionFinished):
    KIND = "rollback.finished"


@dataclass(frozen=True)
class CheckFinished(ActionFinished):
    KIND = "check"


# --- manual steps ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ManualShown(StepEvent):
    KIND = "manual.shown"
    instructions: str
    phase: str


@dataclass(frozen=True)
class StepWaiting(StepEvent):
    KIND = "step.waiting"
    phase: str
    reason: str
    instructions: str
    resume: str


@dataclass(frozen=True)
class ManualConfirmed(StepEvent):
    KIND = "manual.confirmed"
    by: str
    phase: str


@dataclass(frozen=True)
class ManualDeclined(ManualConfirmed):
    KIND = "manual.declined"


# --- rollback --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollbackBegin(Event):
    KIND = "rollback.begin"
    host: str
    steps: list[str]


@dataclass(frozen=True)
class RollbackNone(StepEvent):
    KIND = "rollback.none"
    reason: str


@dataclass(frozen=True)
class RollbackFailed(StepEvent):
    KIND = "rollback.failed"
    name: str
    reason: str
    not_rolled_back: list[str]


@dataclass(frozen=True)
class RollbackDone(StepEvent):
    KIND = "rollback.done"


@dataclass(frozen=True)
class RollbackSkipped(Event):
    KIND = "rollback.skipped"
    host: str
    reason: str


@dataclass(frozen=True)
class RollbackBatch(Event):
    KIND = "rollback.batch"
    batch: int
    hosts: list[str]
    reason: str
