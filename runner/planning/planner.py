"""Runbook + params + inventory -> Plan (planned.py). Pure: nothing is executed, nothing is
written.

Building the plan renders every template that does not depend on a run-time value (a capture),
for every host, so an undefined name or a template error stops the run with exit 2 before any
command runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.errors import InvalidInput, Problem, UsageError
from runner.format import params as params_mod
from runner.format.inventory import Host, Inventory
from runner.format.inventory_templates import HostVars, InventoryVarError
from runner.format.loader import Catalog
from runner.format.model import Runbook, Scalar, Step
from runner.format.redact import Redactor
from runner.format.render import (
    RenderError,
    always_used,
    evaluate,
    names_used,
    render,
    why_false,
)
from runner.format.templated import Template, step_templates
from runner.planning.planned import Context, Plan, PlannedAction, PlannedStep, plan_action


def base_context(
    rb: Runbook,
    values: Mapping[str, Scalar | None],
    host_vars: HostVars,
    host: str,
    run_id: str,
) -> Context:
    """Inventory vars < params < the runbook's vars (rendered in order) < builtins. The
    inventory's templates that the runbook's host_vars use are rendered here (InventoryVarError
    if one cannot be): a value from them is a value, never rendered again."""
    ctx: Context = host_vars.usable(n for n, _ in rb.host_vars)
    ctx.update(values)
    ctx["host"] = host
    ctx["run_id"] = run_id
    for name, value in rb.vars:
        ctx[name] = _render_value(value, ctx)
    return ctx


_SINGLE = re.compile(r"^\s*{{(?P<expr>(?:(?!{{|}}).)*)}}\s*$", re.S)


def _render_value(value: Any, ctx: Context) -> Any:
    if isinstance(value, str):
        # a var that is one expression keeps its type (a mapping stays a mapping, as in
        # Ansible's native templating); anything else renders to a string
        single = _SINGLE.match(value)
        if single:
            return evaluate(single.group("expr"), ctx)
        return render(value, ctx)
    if isinstance(value, list):
        return [_render_value(v, ctx) for v in value]
    if isinstance(value, dict):
        return {k: _render_value(v, ctx) for k, v in value.items()}
    return value


def batches(hosts: list[Host], rb: Runbook) -> list[list[Host]]:
    """Split hosts into rollout batches: counts, percentages, or a list of them (canary first).

    The last size given repeats until every host is in a batch.
    """
    if rb.rollout is None or not hosts:
        return [hosts] if hosts else []
    out: list[list[Host]] = []
    rest = list(hosts)
    sizes = list(rb.rollout.batches)
    i = 0
    while rest:
        size = sizes[min(i, len(sizes) - 1)]
        n = math.ceil(len(hosts) * float(size[:-1]) / 100) if isinstance(size, str) else int(size)
        n = max(1, n)
        out.append(rest[:n])
        rest = rest[n:]
        i += 1
    return out


def _extras(step: Step, ctx: Context, captures: set[str]) -> tuple[tuple[str, PlannedAction], ...]:
    """The step's checks, verification and rollback, rendered as far as plan time allows."""
    after = captures | ({step.capture} if step.capture else set())
    out = [("preconditions", plan_action(c.action, ctx, captures)) for c in step.preconditions]
    out += [("verify", plan_action(c.action, ctx, after)) for c in step.verify]
    out += [("rollback", plan_action(u.action, ctx, after)) for u in step.rollback]
    return tuple(out)


def build(
    rb: Runbook,
    values: dict[str, Scalar | None],
    inventory: Inventory,
    catalog: Catalog,
    run_id: str,
    redactor: Redactor,
) -> Plan:
    """The plan, or InvalidInput with every problem found, each message masked: the one way out
    of planning for what it found wrong, and a message may quote a value (`| arg` refusing one,
    Jinja's `has no attribute 'KEY'` for a lookup keyed by a secret)."""
    try:
        return _build(rb, values, inventory, catalog, run_id, redactor)
    except InvalidInput as exc:
        masked = [Problem(p.location, redactor.text(p.message)) for p in exc.problems]
        raise InvalidInput(masked) from None  # `from None`: --debug's traceback shows only this


def _build(
    rb: Runbook,
    values: dict[str, Scalar | None],
    inventory: Inventory,
    catalog: Catalog,
    run_id: str,
    redactor: Redactor,
) -> Plan:
    hosts = inventory.resolve(rb.targets)
    plan = Plan(
        runbook=rb,
        params=values,
        inventory=inventory,
        hosts=hosts,
        batches=batches(hosts, rb),
        run_id=run_id,
        contexts={},
        steps={},
        redactor=redactor,
        catalog=catalog,
        secret_params=params_mod.secret_names(rb),
    )
    problems: list[Problem] = []
    for h in hosts:
        try:
            ctx = base_context(rb, values, inventory.host_vars(h), h.name, run_id)
        except InventoryVarError as exc:  # at the declaration of the var it could not give
            assert rb.doc is not None
            problems.append(rb.doc.problem(("host_vars", exc.var), str(exc)))
            continue
        except RenderError as exc:
            raise InvalidInput([_at(rb, ("vars",), h, str(exc))]) from None
        _require_host_vars(rb, ctx, h, problems)
        plan.contexts[h.name] = ctx
        planner = _HostPlanner(h, catalog, inventory.host_vars(h), problems, redactor)
        plan.steps[h.name] = planner.steps(rb, ctx, set())
    if problems:
        raise InvalidInput(problems)
    return plan


def _require_host_vars(rb: Runbook, ctx: Context, h: Host, problems: list[Problem]) -> None:
    for name, _desc in rb.host_vars:
        if name not in ctx:
            problems.append(
                _at(
                    rb,
                    ("host_vars", name),
                    h,
                    f"the inventory gives host '{h.name}' no variable '{name}'",
                )
            )


def _at(rb: Runbook, path: tuple[str | int, ...], h: Host, message: str) -> Problem:
    assert rb.doc is not None
    return rb.doc.problem(path, f"on host '{h.name}': {message}")


@dataclass
class _HostPlanner:
    """Plans one host's steps (recursing into `call:`), collecting problems instead of stopping."""

    host: Host
    catalog: Catalog
    hvars: HostVars
    problems: list[Problem]
    redactor: Redactor  # the plan's: a `when:` reason shows values; a call adds its secrets

    def steps(self, rb: Runbook, ctx: Context, captures: set[str]) -> list[PlannedStep]:
        out: list[PlannedStep] = []
        known = captures
        unset: dict[str, str] = {}  # capture -> why its step never sets it on this host
        for step in rb.steps:
            planned = self.step(rb, step, ctx, known, unset)
            out.append(planned)
            if not step.capture:
                continue
            if planned.status in ("skipped", "not-targeted"):
                # not a run-time value: a use of it fails for sure, so here and not mid-run
                unset[step.capture] = f"step '{step.id}' is {planned.status} ({planned.reason})"
            else:
                known = known | {step.capture}
        return out

    def step(
        self,
        rb: Runbook,
        step: Step,
        ctx: Context,
        captures: set[str],
        unset: Mapping[str, str],
    ) -> PlannedStep:
        h = self.host
        if step.on is not None and h.name not in step.on:
            return PlannedStep(step, "not-targeted", f"on: {', '.join(step.on)}")
        try:
            if step.when is not None:
                why = self._never_set(rb, step, [(("when",), step.when, True)], unset)
                if why:
                    return PlannedStep(step, "error", why)
                waits = sorted(names_used(step.when, expression=True) & captures)
                if waits:  # what it guards may depend on the same thing: not looked at here
                    action = plan_action(step.action, ctx, captures)
                    why = f"when: {step.when} (waits for {', '.join(waits)})"
                    return PlannedStep(step, "decided-at-run-time", why, action)
                if not evaluate(step.when, ctx):
                    return PlannedStep(step, "skipped", why_false(step.when, ctx, self.redactor))
            why = self._never_set(rb, step, step_templates(step), unset)
            if why:
                return PlannedStep(step, "error", why)
            if step.action.kind == "call":
                return self.call(rb, step, ctx, captures)
            action = plan_action(step.action, ctx, captures)
            extras = _extras(step, ctx, captures)
            if step.action.kind == "manual":
                return PlannedStep(step, "manual", "", action, extras=extras)
            status = "decided-at-run-time" if action.deferred else "will-run"
            return PlannedStep(step, status, "", action, extras=extras)
        except RenderError as exc:
            self.problems.append(_at(rb, tuple(_path(step)), h, f"step '{step.id}': {exc}"))
            return PlannedStep(step, "error", str(exc))

    def call(self, rb: Runbook, step: Step, ctx: Context, captures: set[str]) -> PlannedStep:
        sub = self.catalog.load(step.action.text)
        used = {n for _, v in step.action.with_ if isinstance(v, str) for n in names_used(v)}
        waits = sorted(used & captures)
        if waits:  # decided at run time: rendering now would hit the not-yet-captured names
            try:  # but the inventory's values it will use can be rendered now
                self.hvars.usable(n for n, _ in sub.host_vars)
            except InventoryVarError as exc:
                self.problems.append(
                    _at(rb, tuple(_path(step)), self.host, f"call '{sub.id}': {exc}")
                )
                return PlannedStep(step, "error", str(exc))
            later = {
                k for k, v in step.action.with_ if isinstance(v, str) and names_used(v) & captures
            }
            call_params(sub, step, ctx, later)  # the others are known now: checked now
            why = f"params wait for {', '.join(waits)}"
            return PlannedStep(
                step, "decided-at-run-time", why, PlannedAction("call", sub.id, tuple(waits))
            )
        _, sub_values, sub_ctx = expand_call(self.catalog, step, ctx, self.hvars, self.host.name)
        for name in params_mod.secret_names(sub):  # as the run does (calls.py), from plan time
            if sub_values.get(name) is not None:
                self.redactor.add(str(sub_values[name]))
        children = self.steps(sub, sub_ctx, set())
        return PlannedStep(step, "will-run", "", PlannedAction("call", sub.id), tuple(children))

    def _never_set(
        self, rb: Runbook, step: Step, found: Iterable[Template], unset: Mapping[str, str]
    ) -> str:
        """Report each template of the step that uses, unguarded, a capture whose step the plan
        already skips on this host (it would fail on an undefined name mid-run); the first
        reason, or "" when there is none."""
        first = ""
        for keys, source, expression in found if unset else ():
            for name in sorted(always_used(source, expression=expression) & unset.keys()):
                why = (
                    f"capture '{name}' is never set: {unset[name]}; where it may be unset, "
                    f"write `{name} | default(...)` or test `{name} is defined`"
                )
                where = (*_path(step), *keys)
                self.problems.append(_at(rb, where, self.host, f"step '{step.id}': {why}"))
                first = first or why
        return first


def expand_call(
    catalog: Catalog, step: Step, ctx: Context, host_vars: HostVars, host: str
) -> tuple[Runbook, dict[str, Scalar | None], Context]:
    """A `call:` step's runbook, its params (the step's `with:`, rendered) and its context: the
    one expansion of a call, for the plan and for the run (which expands one that waited for a
    capture at plan time, with the same code)."""
    sub = catalog.load(step.action.text)
    values = call_params(sub, step, ctx)
    try:
        return sub, values, base_context(sub, values, host_vars, host, ctx["run_id"])
    except InventoryVarError as exc:  # an inventory value it uses cannot be had: as a bad param
        raise RenderError(f"call '{sub.id}': {exc}") from None


def call_params(
    sub: Runbook, step: Step, ctx: Context, later: Collection[str] = ()
) -> dict[str, Scalar | None]:
    """The called runbook's params from the step's `with:`, rendered; those in `later` wait for
    a capture (left out, checked when the call runs). A bad value is a RenderError, as any other
    template whose value does not fit: the planner reports it with its place, and at run time it
    is the call step's failure (steps.py), never an internal error."""
    given = {
        k: (render(v, ctx) if isinstance(v, str) else v)
        for k, v in step.action.with_
        if k not in later
    }
    try:
        return params_mod.resolve(sub, given, environ={}, later=later)
    except UsageError as exc:
        raise RenderError(f"call '{sub.id}': {exc}") from None


def _path(step: Step) -> list[str | int]:
    return ["steps", int(step.path.split("[")[1].rstrip("]"))]
