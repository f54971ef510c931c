"""The command table: each row is a command's words, its line of help, how to add its
arguments, and the thin adapter that calls runner/commands/. cli.py builds the argument tree
from it (only the rows named on the command line get their arguments) and dispatches.

A row's `arguments` and `run` import nothing at module level: the table itself is cheap.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runner.commands import arguments as add
from runner.errors import UsageError

Adder = Callable[[argparse.ArgumentParser], None]
Runner = Callable[[argparse.Namespace, Path], int]


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]  # ("plan",) or ("plan", "approve")
    help: str
    arguments: Adder
    run: Runner
    epilog: str = ""


def _list(args: argparse.Namespace, state: Path) -> int:
    from runner.commands.listing import list_files

    return list_files(as_json=args.json)


def _validate(args: argparse.Namespace, state: Path) -> int:
    from runner.commands.validate import validate

    return validate(args.files, inventory=args.inventory, as_json=args.json)


def _show(args: argparse.Namespace, state: Path) -> int:
    from runner.commands.show import show

    return show(args.name, fmt=args.format)


def _plan(args: argparse.Namespace, state: Path) -> int:
    from runner.commands.plan import plan

    return plan(
        args.name,
        args.param,
        args.params,
        args.inventory,
        fmt="json" if args.json else args.format,
        out=args.out,
        check=args.check,
        state_dir=state,
        expires=args.expires,
        ssh_key=args.ssh_key,
        extra=args.extra_vars,
        limit=args.limit,
        list_hosts=args.list_hosts,
    )


def _approve(args: argparse.Namespace, state: Path) -> int:
    from runner.commands.plan import approve

    return approve(
        args.plan_file,
        state,
        by=args.by,
        note=args.note,
        signing_key=args.signing_key,
        ssh_key=args.ssh_key,
    )


def _plan_show(args: argparse.Namespace, state: Path) -> int:
    from runner.commands.plan import show_saved

    return show_saved(args.plan_file, fmt="json" if args.json else args.format)


def _run(args: argparse.Namespace, state: Path) -> int:
    from runner.commands.run import RunArgs, run

    if not args.name and not args.plan_file:
        raise UsageError("runbook run: give a runbook NAME or --plan PLAN")
    a = RunArgs(
        name=args.name or "",
        plan_file=args.plan_file,
        require_approval=args.require_approval,
        operator=args.operator,
        signing_key=args.signing_key,
        ssh_key=args.ssh_key,
        from_step=args.from_step,
        from_reason=args.from_reason,
        params=args.param,
        params_file=args.params,
        inventory=args.inventory,
        yes=args.yes,
        no_rollback=args.no_rollback,
        ticket=args.ticket,
        forks=args.forks,
        accept_new_host_keys=args.accept_new_host_keys,
        quiet=args.quiet,
        extra=args.extra_vars,
        limit=args.limit,
        json=args.json,
    )
    if args.list_hosts:
        from runner.commands.plan import list_hosts

        return list_hosts(a)
    return run(a, state)


def _resume(args: argparse.Namespace, state: Path) -> int:
    from runner.commands import resume as resume_cmd
    from runner.commands.run import RunArgs

    ra = RunArgs(
        name="",
        params=args.param,
        yes=args.yes,
        quiet=args.quiet,
        forks=args.forks,
        no_rollback=args.no_rollback,
        signing_key=args.signing_key,
        ssh_key=args.ssh_key,
    )
    if args.command == "rollback":
        return resume_cmd.rollback(
            args.run_id, state, ra, reason=args.reason, rerun_unknown=args.rerun_unknown
        )
    return resume_cmd.resume(
        args.run_id,
        state,
        ra,
        confirm=args.confirm,
        by=args.by,
        accept_changed=args.accept_changed_runbook,
        rerun_unknown=args.rerun_unknown,
    )


def _resolve(args: argparse.Namespace, state: Path) -> int:
    from runner.commands.resolve import resolve

    return resolve(
        args.run_id,
        state,
        step=args.step,
        by=args.by,
        reason=args.reason,
        host=args.host,
        signing_key=args.signing_key,
        ssh_key=args.ssh_key,
    )


def _checklist(args: argparse.Namespace, state: Path) -> int:
    from runner.commands.checklist import dispatch

    return dispatch(args, state)


def _schema(args: argparse.Namespace, state: Path) -> int:
    import sys

    from runner.format.schema import schema_text

    sys.stdout.write(schema_text(args.kind))
    return 0


def _audit(args: argparse.Namespace, state: Path) -> int:
    from runner.commands import audit

    return audit.dispatch(args, state)


def _import(args: argparse.Namespace, state: Path) -> int:
    from runner.commands.import_md import dispatch

    return dispatch(args)


def _inventory_cmd(args: argparse.Namespace, state: Path) -> int:
    from runner.commands.show_inventory import show_inventory

    return show_inventory(
        args.inventory, limit=args.limit, as_list=args.list or args.json, host=args.host
    )


def _completion(args: argparse.Namespace, state: Path) -> int:
    from runner.commands.completion import script

    print(script(args.shell))
    return 0


def _complete(args: argparse.Namespace, state: Path) -> int:
    from runner.commands.completion import candidates

    for c in candidates(args.words, state):
        print(c)
    return 0


COMMANDS: tuple[Command, ...] = (
    Command(
        ("list",), "runbooks and checklists found, with id, kind, title, targets", add.none, _list
    ),
    Command(("validate",), "schema and semantic checks", add.validate_args, _validate),
    Command(("show",), "a runbook as a readable document", add.show_args, _show),
    Command(
        ("plan",),
        "dry run: every rendered command per host (also: plan approve, plan show)",
        add.plan_args,
        _plan,
        epilog="Saved plans: `runbook plan approve PLAN --by NAME`, `runbook plan show PLAN`. "
        "To plan a runbook named approve or show: `runbook plan -- approve`.",
    ),
    Command(("plan", "approve"), "approve a saved plan (four eyes)", add.approve_args, _approve),
    Command(("plan", "show"), "print a saved plan", add.plan_show_args, _plan_show),
    Command(("run",), "execute a runbook (or a saved plan with --plan)", add.run_args, _run),
    Command(("checklist",), "checklist instances and sign-off", add.checklist_args, _checklist),
    Command(
        ("resume",), "continue an interrupted, failed or waiting run", add.resume_only, _resume
    ),
    Command(
        ("resolve",),
        "record that a person finished or undid a step by hand",
        add.resolve_args,
        _resolve,
    ),
    Command(
        ("rollback",),
        "undo the completed steps of a run, in reverse order",
        add.rollback_args,
        _resume,
    ),
    Command(("schema",), "print a JSON Schema", add.schema_args, _schema),
    Command(
        ("import",),
        "a Markdown runbook -> runbooks and checklists; --check",
        add.import_args,
        _import,
    ),
    Command(
        ("audit",),
        "for auditors: verify, list, show, export, report, review; keygen, checkpoint, ship",
        add.audit_args,
        _audit,
    ),
    Command(
        ("inventory",),
        "hosts, groups and resolved vars of an inventory (secrets masked)",
        add.inventory_args,
        _inventory_cmd,
    ),
    Command(
        ("completion",),
        "print a shell completion script (bash, zsh, fish)",
        add.completion_args,
        _completion,
        epilog="bash: `source <(runbook completion bash)`; zsh: `source <(runbook completion "
        "zsh)`; fish: `runbook completion fish | source`.",
    ),
)
HIDDEN: tuple[Command, ...] = (
    Command(("__complete",), "", add.complete_args, _complete),  # what the completion scripts call
)
