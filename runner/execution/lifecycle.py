"""A run is a state machine, defined here once: its states, the transitions between them, and
the one function (`derive`) that reads a run's current state and its history back from its
journal. The engine, `resume`, `rollback`, `resolve`, the console's last line, the exit code and
`audit list/show/export/verify` all go through this module.

States (the strings are what the journal, `audit list --status` and the exports say):

    running          a command is executing the run's steps (or crashed while it did)
    waiting          a manual step (or undo) needs a person: no terminal, or "not yet"  (exit 5)
    failed           a step failed and not everything the run did was undone: nothing was
                     (on_failure: halt, --no-rollback, a declined batch gate, an internal
                     error, nothing to undo), or other hosts kept their change   (exit 1)
    rolling-back     a rollback is under way (or was cut short by a crash)
    rolled-back      everything the run did was undone: every host that changed something
                     was rolled back, and something was (hostresults.py)  (exit 1; 0 when asked)
    rollback-failed  an undo failed: a person must act                                  (exit 3)
    succeeded        every step held                                                    (exit 0)
    aborted          preconditions failed on more hosts than allowed: nothing changed   (exit 1)
    interrupted      stopped by SIGINT/SIGTERM, resumable                               (exit 130)
    resolved         a person finished or undid by hand what the tool could not, and the run
                     closed                                                             (exit 0)

Every transition is one `run.state` record in the run's journal: `state`, `from`, `reason`, `by`
(who: the person named with --by, else the operator), `phase` ("forward" or "rollback": where a
`resume` goes on) and `exit_code`; the record's own `ts` says when. A run's outcome is its last
transition. Logs written before `run.state` existed are read through their `run.finished` outcomes.

Public API: `State`, `STATES`, `EXIT_CODES`, `TRANSITIONS`, `allowed`, `Transition`, `Lifecycle`,
`derive(events)`, and `Tracker` (what the commands use to record transitions). For example:

    life = derive(verdict.events)          # the verified records of one run's journal
    life.state, life.exit_code, life.phase # "rolled-back", 1, "rollback"
    for t in life.history: print(t.ts, t.previous, "->", t.state, t.by, t.reason)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from runner.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_ROLLBACK_FAILED,
    EXIT_WAITING,
)
from runner.execution.eventkinds import RunState

State = Literal[
    "running",
    "waiting",
    "failed",
    "rolling-back",
    "rolled-back",
    "rollback-failed",
    "succeeded",
    "aborted",
    "interrupted",
    "resolved",
]
Phase = Literal["forward", "rollback"]
STATES: tuple[State, ...] = get_args(State)
EVENT = "run.state"

EXIT_CODES: dict[State, int] = {
    "running": EXIT_INTERRUPTED,  # only seen when the command died: like an interrupt
    "waiting": EXIT_WAITING,
    "failed": EXIT_FAILED,
    "rolling-back": EXIT_ROLLBACK_FAILED,  # a rollback cut short: a person must look
    "rolled-back": EXIT_FAILED,
    "rollback-failed": EXIT_ROLLBACK_FAILED,
    "succeeded": EXIT_OK,
    "aborted": EXIT_FAILED,
    "interrupted": EXIT_INTERRUPTED,
    "resolved": EXIT_OK,
}

_STOPPED: frozenset[State] = frozenset(
    {"waiting", "failed", "rollback-failed", "aborted", "interrupted"}
)
# Which state may follow which. None is "no state yet": the run's first command.
TRANSITIONS: dict[State | None, frozenset[State]] = {
    None: frozenset({"running", "aborted", "interrupted"}),
    # running -> running, rolling-back -> rolling-back: a command crashed; the next goes on
    "running": frozenset(STATES) - {"resolved"},
    "rolling-back": frozenset(
        {
            "rolling-back",
            "rolled-back",
            "rollback-failed",
            "waiting",
            "interrupted",
            "resolved",
            "failed",
        }
    ),
    # a stopped run goes on (resume), is undone (rollback) or is closed by a person (resolve)
    **{s: frozenset({"running", "rolling-back", "resolved"}) for s in _STOPPED},
    "succeeded": frozenset({"rolling-back"}),  # `runbook rollback` of a finished run, confirmed
    "rolled-back": frozenset({"resolved"}),
    "resolved": frozenset({"rolling-back"}),
}


def allowed(previous: State | None, state: State) -> bool:
    return state in TRANSITIONS.get(previous, frozenset())


@dataclass(frozen=True)
class Transition:
    """One change of state: to what, from what, when (UTC), who, why, where a resume goes on."""

    state: State
    previous: State | None
    ts: str
    seq: int  # the journal record's
    by: str
    reason: str
    phase: Phase
    exit_code: int


@dataclass(frozen=True)
class Lifecycle:
    """A run's current state and every transition that led to it, oldest first."""

    state: State | None  # None: the journal has no run.started (not a run)
    history: tuple[Transition, ...]

    @property
    def phase(self) -> Phase:
        return self.history[-1].phase if self.history else "forward"

    @property
    def exit_code(self) -> int:
        return self.history[-1].exit_code if self.history else EXIT_INTERRUPTED


def derive(events: Sequence[Mapping[str, Any]]) -> Lifecycle:
    """A run's state and history from its journal records (verified, in order)."""
    recorded = [e for e in events if e.get("event") == EVENT]
    history = [_transition(e) for e in recorded] if recorded else list(_from_legacy(events))
    return Lifecycle(history[-1].state if history else None, tuple(history))


def _who(e: Mapping[str, Any]) -> str:
    return str(e.get("by") or (e.get("actor") or {}).get("user", ""))


def _transition(e: Mapping[str, Any]) -> Transition:
    state = cast(State, e["state"])
    return Transition(
        state,
        cast("State | None", e.get("from")),
        str(e["ts"]),
        int(e["seq"]),
        _who(e),
        str(e.get("reason") or ""),
        "rollback" if e.get("phase") == "rollback" else "forward",
        int(e.get("exit_code", EXIT_CODES.get(state, EXIT_FAILED))),
    )


_LEGACY: dict[str, State] = {"halted": "failed", "error": "failed"}


def _from_legacy(events: Sequence[Mapping[str, Any]]) -> list[Transition]:
    """Logs older than `run.state`: each command's opening and its run.finished outcome."""
    out: list[Transition] = []
    for e in events:
        ev = e.get("event")
        state: State
        if ev in ("run.started", "run.resumed"):
            state, reason, code = "running", str(ev), EXIT_INTERRUPTED
        elif ev == "rollback.requested":
            state, reason, code = "rolling-back", "rollback requested", EXIT_ROLLBACK_FAILED
        elif ev == "run.finished":
            outcome = str(e.get("outcome", ""))
            state = _LEGACY.get(outcome, cast(State, outcome))
            if state not in STATES:
                continue
            reason, code = outcome, int(e.get("exit_code", EXIT_CODES[state]))
        else:
            continue
        prev = out[-1].state if out else None
        undoing = state in ("rolling-back", "rolled-back", "rollback-failed")
        phase: Phase = "rollback" if undoing else "forward"
        out.append(
            Transition(state, prev, str(e["ts"]), int(e["seq"]), _who(e), reason, phase, code)
        )
    return out


Emit = Callable[[RunState], None]  # Bus.emit


class Tracker:
    """Records a command's transitions of one run (each a `run.state` record, through the bus).

    `current` is the state the run is in when the command starts (from `derive`), None for a new
    run. `requested` marks a rollback a person asked for: reaching rolled-back is then exit 0.
    """

    def __init__(
        self, emit: Emit, current: State | None = None, *, by: str = "", requested: bool = False
    ) -> None:
        self.emit = emit
        self.state = current
        self.by = by
        self.requested = requested
        self.phase: Phase = "forward"
        self.resolved_by_person = False  # a step of the rollback was closed with `resolve`

    def to(
        self,
        state: State,
        reason: str = "",
        *,
        by: str = "",
        phase: Phase | None = None,
        code: int | None = None,
    ) -> int:
        """Record the transition; returns the exit code the run has in its new state (`code`
        overrides the state's own: an internal error fails a run with exit 3, a person must
        look)."""
        if state == "rolled-back" and self.resolved_by_person:
            state = "resolved"
        # an unforeseen transition is recorded as it happened (the record must say what
        # happened), never refused half-way through closing a run; `allowed` is what tests check
        if phase is not None:
            self.phase = phase
        elif state in ("rolling-back", "rolled-back", "rollback-failed"):
            self.phase = "rollback"
        elif state in ("running", "failed", "aborted", "succeeded"):
            self.phase = "forward"
        # waiting, interrupted, resolved: where the run was (a resume goes on from there)
        if code is None:
            code = EXIT_CODES[state]
            if state in ("rolled-back", "resolved") and self.requested:
                code = EXIT_OK
        self.emit(RunState(state, reason, by or self.by, self.phase, code, self.state))
        self.state = state
        return code
