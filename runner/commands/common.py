"""What plan and run share: load the runbook, the params and the inventory, build the plan."""

from __future__ import annotations

import datetime as dt
import getpass
import secrets
from typing import Any

from runner import inventory as inventory_mod
from runner import params as params_mod
from runner.console import interactive
from runner.errors import InvalidInput, Location, Problem, UsageError
from runner.inventory import Inventory
from runner.loader import Catalog
from runner.model import Param
from runner.plan import Plan, build
from runner.redact import Redactor
from runner.source import load_file


def new_run_id(runbook: str) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{runbook}-{secrets.token_hex(3)}"


def _prompt(p: Param) -> str | None:
    if not interactive():
        return None
    return getpass.getpass(f"{p.name} (secret): ")


def _params_file(path: str) -> dict[str, Any]:
    doc = load_file(path)
    if not isinstance(doc.data, dict):
        raise InvalidInput(
            [Problem(Location(doc.file, 1, 1), "a params file is a mapping of NAME: VALUE")]
        )
    return dict(doc.data)


def prepare(
    name: str,
    assignments: list[str],
    params_file: str | None,
    inventory: str | None,
    run_id: str | None = None,
) -> Plan:
    inv: Inventory = inventory_mod.load(inventory) if inventory else inventory_mod.DEFAULT
    catalog = Catalog()
    rb = catalog.load_checked(name, inv.all_var_names())
    given: dict[str, Any] = _params_file(params_file) if params_file else {}
    given.update(params_mod.parse_assignments(assignments))
    values = params_mod.resolve(rb, given, prompt=_prompt)
    redactor = Redactor(
        str(values[n]) for n in params_mod.secret_names(rb) if values.get(n) is not None
    )
    if not rb.steps:
        raise UsageError(f"{rb.id}: no steps")
    return build(rb, values, inv, catalog, run_id or new_run_id(rb.id), redactor)
