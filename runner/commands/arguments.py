"""Each command's arguments, with a line of help for every option and positional (a test
walks the whole tree to keep it so). Rows of commands/table.py point here."""

from __future__ import annotations

import argparse


def none(p: argparse.ArgumentParser) -> None:
    pass


def inventory(p: argparse.ArgumentParser, *, limit: bool = True) -> None:
    p.add_argument(
        "-i",
        "--inventory",
        action="append",
        metavar="INV",
        help="inventory: our YAML, an Ansible YAML/INI file, a script, a directory; "
        "repeat to merge in order (default: only the local host)",
    )
    if limit:
        p.add_argument(
            "-l",
            "--limit",
            metavar="PATTERN",
            help="only the hosts an Ansible host pattern picks (web1, 'web*', 'prod:&eu', "
            "'prod:!app3', a,b)",
        )


def params(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="set a param"
    )
    p.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="VARS",
        help="params, the Ansible way: 'a=1 b=2', @file.yaml, or a JSON object (wins over -p)",
    )
    p.add_argument("--params", metavar="FILE", help="a YAML/JSON mapping of params")


def runbook_name(p: argparse.ArgumentParser, nargs: str | None = None) -> None:
    p.add_argument(
        "name", nargs=nargs, metavar="RUNBOOK", help="runbook name (see `runbook list`) or path"
    )


def run_id(p: argparse.ArgumentParser, nargs: str | None = None) -> None:
    p.add_argument(
        "run_id", nargs=nargs, metavar="RUN_ID", help="a run's id (see `runbook audit list`)"
    )


def executing(p: argparse.ArgumentParser) -> None:
    """What every command that executes steps takes: run, resume, rollback."""
    p.add_argument(
        "--yes", action="store_true", help="answer confirm: questions with yes (never manual steps)"
    )
    p.add_argument("--quiet", action="store_true", help="do not echo command output")
    p.add_argument(
        "--forks", type=_at_least_one, default=10, metavar="N", help="hosts at once (default 10)"
    )
    p.add_argument(
        "--no-rollback", action="store_true", help="on failure, stop without rolling back"
    )


def validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files",
        nargs="*",
        metavar="NAME|PATH",
        help="runbooks (default: all found); directories are searched",
    )
    p.add_argument(
        "-i",
        "--inventory",
        action="append",
        metavar="INV",
        help="also accept the inventory's variables as defined names (repeatable)",
    )


def show_args(p: argparse.ArgumentParser) -> None:
    runbook_name(p)
    p.add_argument("--format", choices=["text", "md"], default="text", help="default: text")


def plan_args(p: argparse.ArgumentParser) -> None:
    runbook_name(p)
    params(p)
    inventory(p)
    p.add_argument(
        "-o",
        "--out",
        metavar="PLAN",
        help="also save the plan (JSON, with its hash) for review and `run --plan`",
    )
    p.add_argument("--format", choices=["text", "md", "json"], default="text", help="default: text")
    p.add_argument(
        "--expires", metavar="DURATION", help="with -o: lifetime (24h, 7d; policy default)"
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="also run the preconditions and `safe` steps on the real targets",
    )
    p.add_argument(
        "--list-hosts", action="store_true", help="print the hosts the plan would touch, and stop"
    )


def plan_file(p: argparse.ArgumentParser) -> None:
    p.add_argument("plan_file", metavar="PLAN", help="a plan saved with `runbook plan -o PLAN`")


def approve_args(p: argparse.ArgumentParser) -> None:
    plan_file(p)
    p.add_argument("--by", help="the approver's name (default: OS user)")
    p.add_argument("--note", help="a note recorded with the approval")


def plan_show_args(p: argparse.ArgumentParser) -> None:
    plan_file(p)
    p.add_argument("--format", choices=["text", "md", "json"], default="text", help="default: text")


def run_args(p: argparse.ArgumentParser) -> None:
    runbook_name(p, "?")
    params(p)
    inventory(p)
    executing(p)
    p.add_argument("--ticket", help="change ticket id, recorded in the audit log")
    p.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="record unknown SSH host keys (changed keys are still refused)",
    )
    p.add_argument(
        "--from",
        dest="from_step",
        metavar="STEP",
        help="start at STEP (earlier steps are skipped; recorded)",
    )
    p.add_argument(
        "--reason", dest="from_reason", help="with --from: why, recorded in the audit log"
    )
    p.add_argument(
        "--plan", dest="plan_file", metavar="PLAN", help="execute exactly a saved, reviewed plan"
    )
    p.add_argument(
        "--require-approval",
        action="store_true",
        help="with --plan: refuse unless someone other than the operator approved it",
    )
    p.add_argument(
        "--operator", help="the operator's name, recorded in the audit log (default: OS user)"
    )
    p.add_argument(
        "--list-hosts", action="store_true", help="print the hosts the run would touch, and stop"
    )


def resume_args(p: argparse.ArgumentParser) -> None:
    run_id(p)
    p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="secret params (never stored) again",
    )
    executing(p)


def resume_only(p: argparse.ArgumentParser) -> None:
    resume_args(p)
    p.add_argument("--confirm", metavar="STEP", help="the manual step the run waits at is done")
    p.add_argument("--by", help="with --confirm: who did it")
    p.add_argument(
        "--accept-changed-runbook",
        action="store_true",
        help="continue although the runbook file changed (recorded)",
    )
    _rerun_unknown(p, "run again steps whose outcome was never recorded")


def _rerun_unknown(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--rerun-unknown", action="store_true", help=what)


def checklist_args(p: argparse.ArgumentParser) -> None:
    from runner.commands import checklist_arguments

    checklist_arguments.add_arguments(p)


def rollback_args(p: argparse.ArgumentParser) -> None:
    resume_args(p)
    p.add_argument("--reason", help="why it is undone, recorded in the audit log")
    _rerun_unknown(p, "undo again what an earlier undo was cut short in (its outcome unknown)")


def resolve_args(p: argparse.ArgumentParser) -> None:
    run_id(p)
    p.add_argument("--step", required=True, help="the step a person finished or undid")
    p.add_argument("--by", required=True, help="who did it")
    p.add_argument("--reason", required=True, help="what was done, recorded")
    p.add_argument("--host", help="only on this host (default: every host it applies to)")


def schema_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "kind",
        nargs="?",
        default="runbook",
        choices=["runbook", "checklist", "inventory", "policy"],
        help="which schema (default: runbook)",
    )


def import_args(p: argparse.ArgumentParser) -> None:
    from runner.commands.import_md import add_arguments

    add_arguments(p)


def audit_args(p: argparse.ArgumentParser) -> None:
    from runner.commands.audit_arguments import add_audit

    add_audit(p)


def inventory_args(p: argparse.ArgumentParser) -> None:
    inventory(p)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--graph", action="store_true", help="groups and hosts as a tree (default)")
    what.add_argument(
        "--list", action="store_true", help="every host's resolved vars, as ansible-inventory"
    )
    p.add_argument("--host", metavar="HOST", help="one host's resolved vars")


def completion_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=["bash", "zsh", "fish"], help="the shell to complete in")


def complete_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("words", nargs="*", help="the command line so far; the last word is completed")


def _at_least_one(text: str) -> int:
    """--forks: a number of hosts at once; 0 or less would run nothing (argparse says so, exit 2)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n
