from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.audit import identity, policy
from runner.commands.common import prepare, target_hosts
from runner.planning import approvals, planfile, planuse
from runner.planning.planned import Plan
from runner.termsafe import neutralise

if TYPE_CHECKING:
    from runner.commands.run import RunArgs


def plan(
    name: str,
    assignments: list[str],
    params_file: str | None,
    inventory: str | Sequence[str] | None,
    *,
    fmt: str = "text",
    out: str | None = None,
    check: bool = False,
    state_dir: Path | None = None,
    expires: str | None = None,
    ssh_key: str | None = None,
    extra: Sequence[str] = (),
    limit: str | None = None,
    list_hosts: bool = False,
) -> int:
    """Print every step per host with its rendered command and checks (and save it with
    `out`). Nothing is executed, except with `check`: preconditions and `safe` steps then run
    on the real targets, after the plan was printed and saved, and decide the exit code.

    `--check` adds to a plan, it does not replace it (it once returned before printing or
    saving: `plan --check -o FILE` exited 0 and saved nothing). With JSON only the report is
    printed, so that stdout stays one document; `plan show PLAN --format json` prints the plan."""
    if list_hosts:
        runbook, targets = target_hosts(name, inventory, limit)
        return _print_hosts(runbook, [h.name for h in targets])
    p = prepare(name, assignments, params_file, inventory, extra=extra, limit=limit)
    if not (check and fmt == "json"):
        _print_view(p.view(), fmt)
    if out:
        _save(p, out, state_dir, expires, ssh_key)
    if check:
        if fmt != "json":
            print()
        return _check(p, state_dir or Path(".runbook"), as_json=fmt == "json")
    return 0


def _save(
    p: Plan, out: str, state_dir: Path | None, expires: str | None, ssh_key: str | None
) -> None:
    rules = policy.load()
    until = planuse.expiry(rules, expires)
    key = identity.key_source(ssh_key)
    digest = planfile.save(
        p,
        Path(out),
        state_dir or Path(".runbook"),
        expires=until,
        author=lambda h: planuse.authored(rules, h, key),
    )
    print(f"plan saved to {out}; plan hash {digest}; expires {until}; used once", file=sys.stderr)
    print(
        f"review it (`runbook plan show {out}`), approve it with `runbook plan approve {out} --by NAME`, run it with `runbook run --plan {out}`",
        file=sys.stderr,
    )


def _print_view(view: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(view, indent=2, sort_keys=True))
    else:  # a command or param may hold a host's or a plan author's escape sequences
        print(neutralise(render_text(view, md=fmt == "md")))


def show_saved(path: str, *, fmt: str = "text") -> int:
    """`runbook plan show PLAN`: a saved plan, as `plan` printed it (its hash checked)."""
    data = planfile.load(Path(path))
    _print_view(data["plan"], fmt)
    if fmt != "json":
        inv = data["inventory"]
        print(f"\nplan hash {data['plan_hash']}; inventory {inv.get('file') or '(none)'}")
    return 0


def list_hosts(a: RunArgs) -> int:
    """`run --list-hosts`: the hosts the run would touch, from the plan it would execute."""
    if a.plan_file:
        from runner.commands.saved_plan import refuse_overrides

        data = planfile.load(Path(a.plan_file))
        refuse_overrides(a, data)
        hosts = [h for batch in data["plan"]["batches"] for h in batch]
        return _print_hosts(data["runbook"], hosts)
    runbook, targets = target_hosts(a.name, a.inventory, a.limit)
    return _print_hosts(runbook, [h.name for h in targets])


def _print_hosts(runbook: str, hosts: list[str]) -> int:
    print(f"{runbook}: {len(hosts)} host(s)")
    for h in hosts:
        print(f"  {h}")
    return 0


def render_text(view: dict[str, Any], *, md: bool = False) -> str:
    lines: list[str] = []
    head = "# Plan: " if md else "plan: "
    lines.append(f"{head}{view['runbook']} (runbook sha256 {view['runbook_sha256'][:12]})")
    if view["params"]:
        lines.append("")
        lines.append("params: " + ", ".join(f"{k}={v}" for k, v in view["params"].items()))
    for i, batch in enumerate(view["batches"], 1):
        if len(view["batches"]) > 1:
            lines.append(f"\n{'## ' if md else ''}batch {i}: {', '.join(batch)}")
        for host in batch:
            lines.append(f"\n{'### ' if md else ''}host {host}")
            for pre in view["preconditions"].get(host, []):
                # a string, or {kind: text, shell} when a shell other than sh runs it
                shell = f" ({pre['shell']})" if isinstance(pre, dict) else ""
                text = next(iter(pre.values())) if isinstance(pre, dict) else pre
                lines.append(f"{'- ' if md else '  '}precondition{shell}: {_code(text, md)}")
            _steps(view["hosts"][host], "", lines, md)
    return "\n".join(lines)


def _code(text: str, md: bool) -> str:
    text = str(text).rstrip()
    if md and "\n" not in text:
        return f"`{text}`"
    return text.replace("\n", "\n      ")


def _steps(steps: list[dict[str, Any]], indent: str, lines: list[str], md: bool) -> None:
    bullet = "- " if md else "  "
    for s in steps:
        reason = f" ({s['reason']})" if s.get("reason") else ""
        lines.append(
            f"{indent}{bullet}**{s['id']}**: {s['status']}{reason}"
            if md
            else f"{indent}  {s['id']}: {s['status']}{reason}"
        )
        for kind in ("run", "http", "manual", "call"):
            if kind in s:
                waits = f"  [waits for {', '.join(s['waits_for'])}]" if s.get("waits_for") else ""
                shell = f" ({s['shell']})" if s.get("shell") else ""
                lines.append(f"{indent}    {kind}{shell}: {_code(s[kind], md)}{waits}")
        for label in ("preconditions", "verify", "rollback"):
            for item in s.get(label, []):
                kind, text = next(
                    (k, v) for k, v in item.items() if k not in ("waits_for", "shell")
                )
                waits = (
                    f"  [waits for {', '.join(item['waits_for'])}]" if item.get("waits_for") else ""
                )
                how = f"{kind}, {item['shell']}" if item.get("shell") else kind
                lines.append(f"{indent}    {label} ({how}): {_code(text, md)}{waits}")
        if s.get("steps"):
            _steps(s["steps"], indent + "    ", lines, md)


def _check(p: Plan, state_dir: Path, *, as_json: bool) -> int:
    """Preconditions and safe steps through the engine (checkmode.py). Exit 0 when every check
    held; 1 when one failed (a precondition that would abort the run, or a safe step)."""
    import sys

    from runner.commands.run import RunArgs, execute
    from runner.execution.steps import Options
    from runner.planning import checkmode

    hosts = [h.name for h in p.hosts]
    report = checkmode.Report(hosts)
    opening = {"runbook": p.runbook.id, "runbook_sha256": p.runbook.sha256, "hosts": hosts}
    options = Options(yes=True, check_only=True)
    args = RunArgs(name=p.runbook.id, quiet=True)
    code = execute(
        p, state_dir, "check.started", opening, options, args, also=report, screen=sys.stderr
    )
    results = report.results()
    print(
        json.dumps(p.redactor.value(checkmode.as_json(results)), indent=2)
        if as_json
        else p.redactor.text(checkmode.report(results))
    )
    return 0 if code == 0 else 1


def approve(
    path: str,
    state_dir: Path,
    *,
    by: str | None,
    note: str | None,
    signing_key: str | None = None,
    ssh_key: str | None = None,
) -> int:
    """Record an approval of a saved plan in the audit log (meaning `approved`), sealed in the
    ledger. The seal's key is `signing_key`, else RUNBOOK_SIGNING_KEY; the approver's own SSH
    key (`ssh_key`, else RUNBOOK_SSH_KEY) signs the approval itself (identity.py)."""
    data = planfile.load(Path(path))
    record = approvals.approve(
        data, state_dir, by=by, note=note, signing_key=signing_key, ssh_key=ssh_key
    )
    print(f"approved plan {data['plan_hash'][:16]} ({data['runbook']}) by {identity.label(record)}")
    return 0
