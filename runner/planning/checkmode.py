"""`plan --check`: the preconditions and the `safe` (read-only) steps, run on the real targets by
the same engine and executors as `run` (remote hosts, retries, `when:`, `call:`, redaction,
process-group kill, audit records), with `Options.check_only` set.

Unsafe steps never run (`not_checked` says why, and the engine skips them); a safe step that needs
a capture of a step that did not run is "cannot check". Nothing is rolled back: only read-only
steps ran. The report is read from the same events the journal records (`Report` subscribes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.execution.eventkinds import Event
from runner.format.model import Step
from runner.format.render import names_used

NOT_SAFE = "not run (not marked safe)"


def not_checked(step: Step, unknown: set[str]) -> str:
    """Why check mode does not run this step ("" when it does); `unknown` gathers the captures
    of the steps that did not run. A `call:` runs: its own steps are checked one by one."""
    action = step.action
    if action.kind == "call":
        return ""
    source = action.http.url if action.http else action.text
    waits = names_used(source) | (names_used(step.when, expression=True) if step.when else set())
    why = ""
    if waits & unknown:
        why = f"cannot check (needs {', '.join(sorted(waits & unknown))} from a step that did not run)"
    elif not step.safe or action.kind not in ("run", "http"):
        why = NOT_SAFE
    if why and step.capture:
        unknown.add(step.capture)
    return why


@dataclass
class HostCheck:
    host: str
    lines: list[str] = field(default_factory=list)
    would_abort: list[str] = field(default_factory=list)


class Report:
    """Subscribes to the engine's events; one HostCheck per host, in the plan's order."""

    def __init__(self, hosts: list[str]) -> None:
        self.hosts = {h: HostCheck(h) for h in hosts}
        self._pre: dict[tuple[str, str], tuple[bool, str]] = {}  # the last attempt counts

    def event(self, e: Event) -> None:
        name, f = e.kind, e.fields()
        host = self.hosts.get(str(f.get("host", "")))
        if host is None:
            return
        step = str(f.get("step", ""))
        if name == "check" and f.get("scope") == "precondition":
            self._pre[(host.host, str(f.get("name", "")))] = (bool(f["ok"]), f.get("reason", ""))
        elif name == "step.outcome" and not f.get("caller") and f["status"] != "skipped":
            ok = f["status"] == "ok"
            host.lines.append(f"{step}: {'ok' if ok else 'FAILS: ' + f.get('reason', '')}")
        elif name == "step.skipped" and not f.get("caller"):
            why = str(f.get("reason", ""))
            plain = why == NOT_SAFE or why.startswith("cannot check")
            host.lines.append(f"{step}: {why if plain else f'skipped ({why})'}")

    shows_output = False

    def sync(self) -> None:
        return None  # a report in memory

    def output(self, host: str, step: str, stream: str, text: str) -> None:
        return None

    def results(self) -> list[HostCheck]:
        for (host, pre), (ok, reason) in self._pre.items():
            self.hosts[host].lines.insert(
                0, f"precondition '{pre}': {'ok' if ok else 'FAILS: ' + reason}"
            )
            if not ok:
                self.hosts[host].would_abort.append(
                    f"would abort: precondition '{pre}' fails on {host}: {reason}"
                )
        return list(self.hosts.values())


def report(results: list[HostCheck]) -> str:
    lines: list[str] = []
    for r in results:
        lines.append(f"check on {r.host}:")
        lines += [f"  {line}" for line in r.lines]
        lines += r.would_abort
    return "\n".join(lines)


def as_json(results: list[HostCheck]) -> list[dict[str, Any]]:
    return [{"host": r.host, "results": r.lines, "would_abort": r.would_abort} for r in results]
