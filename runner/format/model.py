"""Frozen dataclasses for validated input. Nothing after this module handles raw dicts.

construct.py builds them from a document that passed the JSON Schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from runner.format.notify_spec import Notify
from runner.format.source import Document

Scalar = str | int | float | bool
ActionKind = Literal["run", "http", "manual", "call", "notify"]

# What may run a `run:` command (`shell:`; schemas/runbook.schema.json): sh is /bin/sh, the
# default; executors/base.py starts the others. Each has -c, eval, export and `set -e`, and reads
# the POSIX single quotes that `{{ x }}` renders to.
SHELLS = ("sh", "bash", "zsh", "ksh")

DEFAULT_CHECK_TIMEOUT = 60.0  # a check that hangs must not hang the run
DEFAULT_HTTP_TIMEOUT = 30.0


def parse_duration(value: Any) -> float:
    """`30s`, `5m`, `1h`, `250ms` or a number of seconds (the schema checked the shape)."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


@dataclass(frozen=True)
class Expect:
    exit: tuple[int, ...] | None = None  # None: 0 for run actions
    stdout_contains: tuple[str, ...] = ()
    stdout_matches: str | None = None
    status: tuple[int, ...] | None = None  # None: the http action's own `status` (200)
    that: str | None = None


@dataclass(frozen=True)
class Http:
    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None  # templated text; mappings were JSON-encoded at load time
    status: tuple[int, ...] = (200,)
    origin: str = "host"  # `from:`: "host" (through its SSH connection) or "runner"


@dataclass(frozen=True)
class Action:
    """What is executed: a shell command, an HTTP request, a person's task, or another runbook."""

    kind: ActionKind
    text: str  # the run: command, the manual: instructions, or the called runbook's id
    path: str  # where it was written, e.g. "steps[3].run"
    http: Http | None = None
    with_: tuple[tuple[str, Any], ...] = ()
    timeout: float | None = None
    retries: int = 0
    delay: float = 0.0
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    sudo: str | None = None
    shell: str = "sh"  # what runs a run: command (SHELLS)
    expect: Expect = field(default_factory=Expect)
    notify: Notify | None = None


@dataclass(frozen=True)
class Check:
    name: str
    action: Action


@dataclass(frozen=True)
class Undo:
    """One rollback action of a step, verified by its own checks."""

    name: str
    action: Action
    verify: tuple[Check, ...] = ()


@dataclass(frozen=True)
class Step:
    id: str
    name: str
    action: Action
    path: str  # "steps[3]"
    description: str = ""
    when: str | None = None
    preconditions: tuple[Check, ...] = ()
    confirm: str | None = None
    verify: tuple[Check, ...] = ()
    rollback: tuple[Undo, ...] = ()
    capture: str | None = None
    continue_on_error: bool = False
    safe: bool = False
    on: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Param:
    name: str
    type: str = "string"
    default: Scalar | None = None
    choices: tuple[Scalar, ...] = ()
    required: bool = False
    secret: bool = False
    description: str = ""
    pattern: str | None = None


@dataclass(frozen=True)
class Rollout:
    batches: tuple[int | str, ...] = (1,)
    max_failures: int = 0
    pause: str | float = "none"  # "confirm", "none" or seconds
    # when the rollout stops (more than max_failures failed): roll back the failed hosts only
    # ("rollback-failed") or every host of the batch that tipped it ("rollback-batch")
    on_batch_failure: str = "rollback-failed"


@dataclass(frozen=True)
class Runbook:
    id: str
    title: str
    file: str
    sha256: str
    steps: tuple[Step, ...]
    description: str = ""
    owner: str = ""
    tags: tuple[str, ...] = ()
    change: str | None = None
    params: tuple[Param, ...] = ()
    vars: tuple[tuple[str, Any], ...] = ()
    host_vars: tuple[tuple[str, str], ...] = ()
    targets: tuple[str, ...] = ("local",)
    rollout: Rollout | None = None
    on_failure: str = "rollback"
    preconditions: tuple[Check, ...] = ()
    doc: Document | None = field(default=None, compare=False, repr=False)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)
