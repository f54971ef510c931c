"""`plan --check`: run the preconditions and the `safe` (read-only) steps on the real targets.

Unsafe steps never run; a safe step that needs a capture of an unsafe one is reported as
"cannot check". Every command that runs is recorded in the audit log like any run's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from runner.actions import execute
from runner.events import Bus
from runner.executors.pool import Executors
from runner.model import Action
from runner.plan import Plan
from runner.render import RenderError, names_used
from runner.steps import digest


@dataclass
class HostCheck:
    host: str
    lines: list[str] = field(default_factory=list)
    would_abort: list[str] = field(default_factory=list)


async def check(plan: Plan, bus: Bus, executors: Executors) -> list[HostCheck]:
    try:
        return list(
            await asyncio.gather(*(_host(plan, bus, executors, h.name) for h in plan.hosts))
        )
    finally:
        await executors.close()


async def _host(plan: Plan, bus: Bus, executors: Executors, name: str) -> HostCheck:
    host = next(h for h in plan.hosts if h.name == name)
    ex = executors.get(host)
    ctx = dict(plan.contexts[name])
    out = HostCheck(name)

    async def run(action: Action, step: str, what: str) -> tuple[str, str]:
        """(reason it failed or "", stdout)."""
        try:
            o = await execute(action, ctx, ex, lambda _s, _c: None)
        except RenderError as exc:
            return str(exc), ""
        bus.emit(
            "check",
            host=name,
            step=step,
            scope=what,
            command=o.command,
            ok=o.ok,
            exit=o.result.exit,
            reason=o.reason,
            stdout=digest(o.result.stdout),
        )
        return o.reason, o.result.stdout.text

    for c in plan.runbook.preconditions:
        reason, _ = await run(c.action, "preconditions", "precondition")
        out.lines.append(f"precondition '{c.name}': {'ok' if not reason else 'FAILS: ' + reason}")
        if reason:
            out.would_abort.append(
                f"would abort: precondition '{c.name}' fails on {name}: {reason}"
            )
    unknown: set[str] = set()  # captures of steps that did not run
    for p in plan.steps[name]:
        step = p.step
        if p.status in ("skipped", "not-targeted"):
            out.lines.append(f"{step.id}: {p.status}")
            continue
        if not step.safe or step.action.kind not in ("run", "http"):
            out.lines.append(f"{step.id}: not run (not marked safe)")
            unknown |= {step.capture} if step.capture else set()
            continue
        source = step.action.http.url if step.action.http else step.action.text
        waits = names_used(source) & unknown
        if waits:
            out.lines.append(
                f"{step.id}: cannot check (needs {', '.join(sorted(waits))} from a step that did not run)"
            )
            unknown |= {step.capture} if step.capture else set()
            continue
        reason, stdout = await run(step.action, step.id, "safe-step")
        if not reason and step.capture:
            ctx[step.capture] = stdout.strip()
        for c in step.verify if not reason else ():
            reason, _ = await run(c.action, step.id, "verify")
            if reason:
                break
        out.lines.append(f"{step.id}: {'ok' if not reason else 'FAILS: ' + reason}")
    return out


def report(results: list[HostCheck]) -> tuple[str, bool]:
    lines: list[str] = []
    ok = True
    for r in results:
        lines.append(f"check on {r.host}:")
        lines += [f"  {line}" for line in r.lines]
        for line in r.would_abort:
            ok = False
            lines.append(line)
    return "\n".join(lines), ok


def as_json(results: list[HostCheck]) -> list[dict[str, Any]]:
    return [{"host": r.host, "results": r.lines, "would_abort": r.would_abort} for r in results]
