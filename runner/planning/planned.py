"""The Plan: a value that can be printed, hashed and saved (issue: plan review), and that the
engine executes. planner.py builds it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.format.inventory import Host, Inventory
from runner.format.loader import Catalog
from runner.format.model import Action, Runbook, Scalar, Step
from runner.format.redact import Redactor
from runner.format.render import names_used, render

Context = dict[str, Any]


@dataclass(frozen=True)
class PlannedAction:
    kind: str
    text: str  # rendered (secrets still in: redact before showing), or the template if deferred
    deferred: tuple[str, ...] = ()  # run-time names it waits for
    shell: str = "sh"  # what runs a `run:` command; shown, saved and hashed unless it is sh

    def view(self) -> dict[str, Any]:
        """{kind: text}, and the shell when it is not sh (so a plan without `shell:` reads,
        and hashes, as before)."""
        out: dict[str, Any] = {self.kind: self.text}
        if self.shell != "sh":
            out["shell"] = self.shell
        if self.deferred:
            out["waits_for"] = list(self.deferred)
        return out


@dataclass(frozen=True)
class PlannedStep:
    step: Step
    status: str  # will-run | skipped | decided-at-run-time | manual | not-targeted
    reason: str = ""
    action: PlannedAction | None = None
    children: tuple[PlannedStep, ...] = ()
    extras: tuple[tuple[str, PlannedAction], ...] = ()  # ("precondition"|"verify"|"rollback", ...)


@dataclass
class Plan:
    runbook: Runbook
    params: dict[str, Scalar | None]
    inventory: Inventory
    hosts: list[Host]
    batches: list[list[Host]]
    run_id: str
    contexts: dict[str, Context]
    steps: dict[str, list[PlannedStep]]
    redactor: Redactor
    catalog: Catalog
    secret_params: set[str] = field(default_factory=set)
    _index: dict[tuple[str, str], PlannedStep] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def view(self) -> dict[str, Any]:
        """JSON-shaped, secrets masked: what is shown, saved and hashed."""
        view: dict[str, Any] = self.redactor.value(
            {
                "runbook": self.runbook.id,
                "runbook_sha256": self.runbook.sha256,
                "params": {
                    k: ("***" if k in self.secret_params else v) for k, v in self.params.items()
                },
                "inventory": self.inventory.file,
                "inventory_sha256": self.inventory.sha256,
                "batches": [[h.name for h in b] for b in self.batches],
                "preconditions": {
                    h: [
                        _precondition(plan_action(c.action, self.contexts[h], set()))
                        for c in self.runbook.preconditions
                    ]
                    for h in self.steps
                },
                "hosts": {h: [_step_view(p) for p in steps] for h, steps in self.steps.items()},
            }
        )
        return view

    def command(self, host: str, sid: str) -> str | None:
        """The rendered command the plan holds for a `run:` step (`caller/step` inside a call),
        or None when it waits for a run-time value: the engine executes this text, so the plan
        shown, saved and approved is what runs."""
        if self._index is None:  # built once: a lookup per step must not scan the runbook
            self._index = {}
            for h, steps in self.steps.items():
                for path, p in _paths(steps, ""):
                    self._index.setdefault((h, path), p)
        found = self._index.get((host, sid))
        a = found.action if found is not None else None
        return a.text if a is not None and a.kind == "run" and not a.deferred else None

    def digest(self) -> str:
        body = json.dumps(self.view(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(body).hexdigest()


def _paths(steps: Sequence[PlannedStep], above: str) -> Iterator[tuple[str, PlannedStep]]:
    """(`caller/step` path, planned step) of these steps and of the steps they call."""
    for p in steps:
        path = f"{above}{p.step.id}"
        yield path, p
        yield from _paths(p.children, f"{path}/")


def _precondition(a: PlannedAction) -> str | dict[str, Any]:
    """A runbook's precondition: its text, as it always was, or {kind: text, shell} when a
    shell other than sh runs it."""
    return a.view() if a.shell != "sh" else a.text


def _step_view(p: PlannedStep) -> dict[str, Any]:
    out: dict[str, Any] = {"id": p.step.id, "name": p.step.name, "status": p.status}
    if p.reason:
        out["reason"] = p.reason
    if p.action:
        out.update(p.action.view())
    for label, extra in p.extras:
        out.setdefault(label, []).append(extra.view())
    if p.children:
        out["steps"] = [_step_view(c) for c in p.children]
    return out


def plan_action(action: Action, ctx: Context, captures: set[str]) -> PlannedAction:
    source = action.http.url if action.kind == "http" and action.http else action.text
    waits = tuple(sorted(names_used(source) & captures))
    if waits:
        return PlannedAction(action.kind, source, waits, action.shell)
    text = render(source, ctx, shell=action.kind == "run")
    if action.kind == "http" and action.http:
        text = f"{action.http.method} {text}"
    return PlannedAction(action.kind, text, shell=action.shell)
