"""How each host of a run ended, and what that makes of the run when a host failed.

`rolled-back` says of the whole run that everything it did was undone (docs/lifecycle.md). One
host's rollback holding does not say that: other hosts may have kept their change (they
succeeded, or their rollback was skipped), and a host that failed before it changed anything, or
whose steps have no undo, "rolls back" nothing. So a run is `rolled-back` only when every host
that changed something was rolled back to the end, and at least one undo ran; otherwise it is
`failed`, which `resume` goes on with (the hosts that failed or never started). The reason names
the hosts, so that the record says which ones are left changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runner.execution.lifecycle import State
from runner.execution.steps import Done


@dataclass
class HostResult:
    host: str
    ok: bool
    reason: str = ""
    rollback_ok: bool | None = None  # None: no rollback attempted (or it waits for a person)
    waiting: bool = False  # at a manual step (of its steps, or of its rollback) with no terminal
    # the steps whose action started (done earlier, before a resume, too): what a rollback undoes
    done: list[Done] = field(default_factory=list, repr=False)

    @property
    def undone(self) -> bool:
        """Its rollback ran to the end and undid something."""
        return bool(self.rollback_ok) and undoes_something(self.done)

    @property
    def kept(self) -> bool:
        """It changed something that is still there (its rollback did not run, or not fully)."""
        return bool(self.done) and not self.rollback_ok


def undoes_something(done: list[Done]) -> bool:
    """Whether unwinding `done` runs an undo (undo.py): a step without `rollback:` has none."""
    return any(undoes_something(d.children) if d.children else bool(d.step.rollback) for d in done)


def after_failure(results: list[HostResult]) -> State:
    """The state of a run that ended with a host failed, no rollback failed and none waiting."""
    undone = any(r.undone for r in results)
    return "rolled-back" if undone and not any(r.kept for r in results) else "failed"


def summary(results: list[HostResult], planned: list[str]) -> str:
    """Why the run ended as it did, naming the hosts: those that failed (the first one's reason),
    were rolled back, kept their change, had nothing to undo, or never started."""
    failed = [r for r in results if not r.ok]
    undone = [r.host for r in results if r.undone]
    if len(planned) == 1 and len(results) == 1:  # the host's own reason says which step
        (r,) = results
        if r.undone:
            return f"{r.reason}; rolled back"
        if r.kept:
            return f"{r.reason}; not rolled back: its change is kept"
        return f"{r.reason}; nothing was undone"
    seen = {r.host for r in results}
    parts = []
    if failed:
        names = _names([r.host for r in failed])
        first = f"{failed[0].host}: {failed[0].reason}"
        parts.append(f"{len(failed)} of {len(planned)} hosts failed: {names} ({first})")
    parts.append(f"rolled back: {_names(undone)}" if undone else "nothing was undone")
    groups = {
        "kept their change": [r.host for r in results if r.kept],
        "nothing to undo": [r.host for r in failed if not r.kept and not r.undone],
        "never started": [h for h in planned if h not in seen],
    }
    parts += [f"{what}: {_names(hosts)}" for what, hosts in groups.items() if hosts]
    return "; ".join(parts)


def _names(hosts: list[str], most: int = 10) -> str:
    more = f" and {len(hosts) - most} more" if len(hosts) > most else ""
    return ", ".join(hosts[:most]) + more
