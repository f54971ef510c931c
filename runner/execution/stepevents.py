"""The events about steps: a step's own (skipped, started, finished, its outcome), its checks,
a manual step's, and a rollback's. A step of a called runbook names its `caller` (the calling
step): readers of the log tell a runbook's own steps by that field, never by the shape of an id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.execution.eventkinds import OPTIONAL, Event

KIND_KEY = {"key": "kind"}  # the action's kind, recorded as `kind`

# --- steps -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class StepEvent(Event):
    """About one step on one host; `caller` names the calling step inside a called runbook."""

    host: str
    step: str
    caller: str | None = field(default=None, metadata=OPTIONAL, kw_only=True)


@dataclass(frozen=True, eq=False, repr=False)
class StepSkipped(StepEvent):
    KIND = "step.skipped"
    reason: str


@dataclass(frozen=True, eq=False, repr=False)
class StepOutcome(StepEvent):
    KIND = "step.outcome"
    status: str
    reason: str
    capture: dict[str, str] | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True, eq=False, repr=False)
class CallStarted(StepEvent):
    """A `call:` step begins: the called runbook, as it was loaded."""

    KIND = "step.started"
    command: str
    runbook_sha256: str
    kind_: str = field(default="call", metadata=KIND_KEY)


@dataclass(frozen=True, eq=False, repr=False)
class ActionStarted(StepEvent):
    """An attempt of a step's action (step.started) or of an undo (rollback.started)."""

    KIND = "step.started"
    kind_: str = field(metadata=KIND_KEY)  # run, http, notify, manual (`kind` is the event's)
    attempt: int
    command: str
    name: str = field(default="", metadata=OPTIONAL)
    shell: str = field(default="sh", metadata=OPTIONAL)  # what runs a `run:` command


@dataclass(frozen=True, eq=False, repr=False)
class UndoStarted(ActionStarted):
    KIND = "rollback.started"


@dataclass(frozen=True, eq=False, repr=False)
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
    # a check has no record but this one: it says which shell ran it, as step.started does
    shell: str = field(default="sh", metadata=OPTIONAL)


@dataclass(frozen=True, eq=False, repr=False)
class UndoFinished(ActionFinished):
    KIND = "rollback.finished"


@dataclass(frozen=True, eq=False, repr=False)
class CheckFinished(ActionFinished):
    KIND = "check"


# --- manual steps ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class ManualShown(StepEvent):
    KIND = "manual.shown"
    instructions: str
    phase: str


@dataclass(frozen=True, eq=False, repr=False)
class StepWaiting(StepEvent):
    KIND = "step.waiting"
    phase: str
    reason: str
    instructions: str
    resume: str


@dataclass(frozen=True, eq=False, repr=False)
class ManualConfirmed(StepEvent):
    KIND = "manual.confirmed"
    by: str
    phase: str
    # the answer vouched for under the policy (identity.vouch), signed when a key was given
    confirmed: list[dict[str, Any]] | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True, eq=False, repr=False)
class ManualDeclined(ManualConfirmed):
    KIND = "manual.declined"


# --- rollback --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class RollbackBegin(Event):
    KIND = "rollback.begin"
    host: str
    steps: list[str]


@dataclass(frozen=True, eq=False, repr=False)
class RollbackNone(StepEvent):
    KIND = "rollback.none"
    reason: str


@dataclass(frozen=True, eq=False, repr=False)
class RollbackFailed(StepEvent):
    KIND = "rollback.failed"
    name: str
    reason: str
    not_rolled_back: list[str]


@dataclass(frozen=True, eq=False, repr=False)
class RollbackDone(StepEvent):
    KIND = "rollback.done"


@dataclass(frozen=True, eq=False, repr=False)
class RollbackSkipped(Event):
    KIND = "rollback.skipped"
    host: str
    reason: str


@dataclass(frozen=True, eq=False, repr=False)
class RollbackBatch(Event):
    KIND = "rollback.batch"
    batch: int
    hosts: list[str]
    reason: str
