"""What a run's audit log says about where it stopped: the basis of `resume`, `rollback` and
`resolve`. The run's state and phase come from lifecycle.derive; this adds, per host, which
steps are done, undone, unknown or waiting for a person, and which hosts the run's rollback
covers: `resume` and `resolve` of a stopped rollback finish that rollback (`to_undo`), never
more of the run; `runbook rollback` undoes the whole run (`started_steps`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.audit import integrity
from runner.audit.journal import run_path
from runner.errors import AuditError, UsageError
from runner.execution.lifecycle import Lifecycle, Phase, State, derive
from runner.execution.locks import Lock, lock_path


@dataclass
class RunState:
    run_id: str
    path: Path
    started: dict[str, Any]
    lifecycle: Lifecycle
    completed: dict[str, list[str]] = field(
        default_factory=dict
    )  # host -> top-level step ids, in order
    unknown: dict[str, list[str]] = field(default_factory=dict)  # started, no outcome recorded
    waiting: dict[str, str] = field(
        default_factory=dict
    )  # host -> manual step waiting for a person (of the steps, or of the rollback: see phase)
    resolved: dict[str, list[str]] = field(default_factory=dict)  # host -> closed by a person
    captures: dict[str, dict[str, str]] = field(default_factory=dict)
    # the hosts the run's rollback covers, since the run last went forward: those it began on,
    # those the engine or a person put in it (rollback.batch, rollback.requested), and those a
    # crash cut in the middle of a step while it ran (failed there, as by a lost connection)
    rolling_back: set[str] = field(default_factory=set)
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)  # verified records

    @property
    def outcome(self) -> State | None:
        return self.lifecycle.state

    @property
    def phase(self) -> Phase:
        return self.lifecycle.phase


def _top_level(e: dict[str, Any]) -> tuple[str, str] | None:
    """(host, step) for an event about one of the runbook's own steps; None for the steps of a
    called runbook (their events name their `caller`) and events about no step."""
    host, step = e.get("host", ""), str(e.get("step", ""))
    if not host or not step or e.get("caller"):
        return None
    return host, step


@contextmanager
def locked(state_dir: Path, run_id: str) -> Iterator[tuple[RunState, Lock]]:
    """The run's lock (its runbook on its hosts) first, then its state, read under the lock: a
    run still live in another process is refused as locked, naming its holder (exit 2), before
    anything is said from its log (was: "outcome unknown" about the step running right now)."""
    started = _first_record(state_dir, run_id)
    lock = Lock(lock_path(state_dir, started["runbook"], started["hosts"]), run_id).acquire()
    try:
        yield load(state_dir, run_id), lock
    finally:
        lock.release()


def _first_record(state_dir: Path, run_id: str) -> dict[str, Any]:
    """The run.started record, to name the run's lock: read before the log is verified (a live
    run is writing it), and verified by `load` under the lock. Anything else: `load` says why."""
    try:
        with run_path(state_dir, run_id).open("rb") as f:
            first = json.loads(f.readline())
        if first.get("event") == "run.started":
            return {"runbook": str(first["runbook"]), "hosts": [str(h) for h in first["hosts"]]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return load(state_dir, run_id).started


def load(state_dir: Path, run_id: str) -> RunState:
    path = run_path(state_dir, run_id)
    if not path.exists():
        raise UsageError(f"no audit log for run {run_id} under {state_dir}")
    # against the ledger too: records no command it recorded appended are not read (integrity)
    report = integrity.verify(state_dir, run_id)
    verdict = report.verdicts[0]
    if not report.ok:
        why = "; ".join([verdict.line(), *report.ledger] if not verdict.ok else report.ledger)
        raise AuditError(f"the log of run {run_id} does not verify ({why}); not going on")
    events = verdict.events
    started = next((e for e in events if e["event"] == "run.started"), None)
    if started is None:
        raise UsageError(f"run {run_id} has no run.started record")
    state = RunState(run_id, path, started, derive(events), events=events)
    # started and not finished: "step" (its action), or "rollback" (its undoing)
    open_steps: dict[tuple[str, str], str] = {}
    for e in events:
        ev = e["event"]
        state.rolling_back = _rollback_hosts(e, state.rolling_back)
        if ev == "run.resumed":  # what an earlier resume counted as done (a confirmed manual step)
            for c in e.get("confirmed") or []:
                if state.waiting.get(c["host"]) == c["step"]:
                    state.waiting.pop(c["host"])
            for h, ids in (e.get("completed_before") or {}).items():
                done = state.completed.setdefault(h, [])
                done += [i for i in ids if i not in done]
                if state.waiting.get(h) in ids:
                    state.waiting.pop(h)
        where = _top_level(e)
        if where is None:
            continue
        host, step = where
        undoing = e.get("phase") == "rollback"  # a manual undo: not the step's own action
        if ev == "step.resolved":
            state.resolved.setdefault(host, []).append(step)
            if state.waiting.get(host) == step:
                state.waiting.pop(host)
            if not undoing and step not in state.completed.setdefault(host, []):
                state.completed[host].append(step)
        elif ev == "step.started":
            open_steps[(host, step)] = "step"
        elif ev == "rollback.started":
            open_steps[(host, step)] = "rollback"
        elif ev == "step.outcome":
            open_steps.pop((host, step), None)
            state.waiting.pop(host, None)
            if e["status"] in ("ok", "skipped") and step not in state.completed.setdefault(
                host, []
            ):
                state.completed[host].append(step)
            for name, value in (e.get("capture") or {}).items():
                state.captures.setdefault(host, {})[name] = value
        elif ev == "rollback.finished":
            open_steps.pop((host, step), None)
            if e.get("ok") and step in state.completed.get(host, []):
                state.completed[host].remove(step)  # undone: a resume must do it again
        elif ev == "step.waiting":
            state.waiting[host] = step
        elif ev == "manual.confirmed" and undoing:
            state.waiting.pop(host, None)
        elif ev == "manual.confirmed":
            state.waiting.pop(host, None)
            if step not in state.completed.setdefault(host, []):
                state.completed[host].append(step)
    for (host, step), what in open_steps.items():
        if what == "rollback" and step in state.completed.get(host, []):
            state.completed[host].remove(step)  # its rollback was cut short: half undone
        if step not in state.completed.get(host, []) and state.waiting.get(host) != step:
            state.unknown.setdefault(host, []).append(step)
            if what == "step" and state.phase == "rollback":
                state.rolling_back.add(host)
    return state


def _rollback_hosts(e: dict[str, Any], hosts: set[str]) -> set[str]:
    """The hosts the run's rollback covers, after record e (a run going forward again starts
    afresh: what an earlier rollback covered and the steps did again is not part of it)."""
    ev = e["event"]
    if ev == "run.started" or (ev == "run.resumed" and "rollback" not in e):
        return set()
    if ev == "rollback.begin":
        return hosts | {e["host"]}
    if ev == "rollback.batch":  # on_batch_failure: rollback-batch, the hosts it undoes
        return hosts | set(e["hosts"])
    named = e.get("steps") if ev == "rollback.requested" else None  # `runbook rollback`: all
    if ev == "run.resumed":
        named = e["rollback"]  # what a resumed rollback went on with
    return hosts | {h for h, steps in (named or {}).items() if steps}


def to_undo(st: RunState) -> dict[str, list[str]]:
    """What the run's rollback has left to undo: `started_steps` on the hosts it covers. A
    resumed rollback does this and no more (the hosts a rollout kept, keep their change)."""
    return {h: steps for h, steps in started_steps(st).items() if h in st.rolling_back}


def started_steps(st: RunState) -> dict[str, list[str]]:
    """Per host, the top-level steps whose action started and that are not undone yet (by the
    tool, or by a person: `resolve` in a rollback): what `rollback RUN_ID` undoes, every host."""
    out: dict[str, list[str]] = {}
    undone: set[tuple[str, str]] = set()
    for e in st.events:
        where = _top_level(e)
        if where is None:
            continue
        host, step = where
        ev, undoing = e["event"], e.get("phase") == "rollback"
        if ev in ("step.started", "manual.confirmed") and not undoing:
            if step not in out.setdefault(host, []):
                out[host].append(step)
            undone.discard(where)  # done again (a resume) after it was undone
        if ev in ("rollback.done", "rollback.none") or (ev == "rollback.finished" and e.get("ok")):
            undone.add(where)
        if ev == "step.resolved" and undoing:
            undone.add(where)
        if ev == "rollback.failed":  # one undo of several held, then one failed: not undone
            undone.discard(where)
    return {h: [s for s in steps if (h, s) not in undone] for h, steps in out.items()}
