"""What plan and run share: load the runbook, the params and the inventory, build the plan."""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import secrets
from collections.abc import Sequence
from typing import Any

from runner.console import interactive
from runner.errors import InvalidInput, Location, Problem, UsageError
from runner.format import inventory as inventory_mod
from runner.format import params as params_mod
from runner.format.inventory import Host, Inventory
from runner.format.loader import Catalog
from runner.format.model import Param
from runner.format.redact import Redactor
from runner.planning.planned import Plan
from runner.planning.planner import build


def new_run_id(runbook: str) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{runbook}-{secrets.token_hex(3)}"


def _prompt(p: Param) -> str | None:
    if not interactive():
        return None
    return getpass.getpass(f"{p.name} (secret): ")


def load_inventory(inventory: str | Sequence[str] | None, limit: str | None) -> Inventory:
    inv = inventory_mod.load(inventory) if inventory else inventory_mod.DEFAULT
    return dataclasses.replace(inv, limit=limit) if limit is not None else inv


def target_hosts(
    name: str, inventory: str | Sequence[str] | None, limit: str | None
) -> tuple[str, list[Host]]:
    """`--list-hosts`: the runbook's id and the hosts it would touch; nothing is rendered."""
    rb = Catalog().load(name)
    return rb.id, load_inventory(inventory, limit).resolve(rb.targets)


def prepare(
    name: str,
    assignments: list[str],
    params_file: str | None,
    inventory: str | Sequence[str] | None,
    run_id: str | None = None,
    *,
    extra: Sequence[str] = (),
    limit: str | None = None,
) -> Plan:
    inv = load_inventory(inventory, limit)
    catalog = Catalog()
    try:
        rb = catalog.load_checked(name, inv.all_var_names())
    except InvalidInput as exc:
        raise _without_inventory(exc) if not inventory else exc from None
    given: dict[str, Any] = params_mod.read_file(params_file) if params_file else {}
    given.update(params_mod.parse_assignments(assignments))
    given.update(params_mod.extra_vars(extra))
    values = params_mod.resolve(rb, given, prompt=_prompt)
    redactor = Redactor(
        str(values[n]) for n in params_mod.secret_names(rb) if values.get(n) is not None
    )
    if not rb.steps:
        raise UsageError(f"{rb.id}: no steps")
    try:
        return build(rb, values, inv, catalog, run_id or new_run_id(rb.id), redactor)
    except InvalidInput as exc:
        raise _without_inventory(exc) if not inventory else exc from None


def _without_inventory(exc: InvalidInput) -> InvalidInput:
    """With no -i, a name the inventory would define is missing: say where it comes from."""
    if any("undefined name" in p.message or "no variable" in p.message for p in exc.problems):
        hint = "no inventory was given: host variables come from one, pass it with -i INVENTORY"
        return InvalidInput([*exc.problems, Problem(Location("runbook"), hint)])
    return exc
