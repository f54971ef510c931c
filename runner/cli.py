"""The argument tree. Each subcommand lives in runner/commands/ as a function returning an int.

One error handler maps errors to the exit codes of SPEC §5 and prints one clear line each
(a traceback only with --debug).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from runner import __version__
from runner.errors import EXIT_INTERRUPTED, EXIT_USAGE, Error, UsageError


def _parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The whole tree, except that a subcommand whose name is not among `argv` gets only its name
    and its line of help: building every subcommand's arguments, and importing the checklist
    commands for theirs, costs ~7 ms of each start. The subcommand being run always appears in
    argv as it is (argparse does not abbreviate subcommand names), so it is always complete;
    `runbook --help` lists the same lines either way."""
    named = set(argv)
    p = argparse.ArgumentParser(
        prog="runbook",
        description="Run declarative runbooks locally or over SSH, with an audit log.",
    )
    p.add_argument("--version", action="version", version=f"runbook {__version__}")
    p.add_argument(
        "--state-dir",
        default=os.environ.get("RUNBOOK_STATE_DIR", ".runbook"),
        help="audit log and state (env RUNBOOK_STATE_DIR; default ./.runbook)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output where it applies")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument(
        "--signing-key",
        metavar="FILE",
        help="Ed25519 key that signs each run's closing record (env RUNBOOK_SIGNING_KEY)",
    )
    p.add_argument(
        "--ssh-key",
        metavar="FILE",
        help="your SSH key (or its .pub, held by ssh-agent): signs approvals, sign-offs, "
        "confirmations, reviews and plans as you (env RUNBOOK_SSH_KEY; docs/audit.md)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("list", help="runbooks and checklists found")
    v = sub.add_parser("validate", help="schema and semantic checks")
    if "validate" in named:
        v.add_argument(
            "files",
            nargs="*",
            metavar="NAME|PATH",
            help="runbooks (default: all found); directories are searched",
        )
        v.add_argument(
            "-i", "--inventory", help="also accept the inventory's variables as defined names"
        )

    s = sub.add_parser("show", help="a runbook as a readable document")
    if "show" in named:
        s.add_argument("name")
        s.add_argument("--format", choices=["text", "md"], default="text")

    for cmd in ("plan", "run"):
        c = sub.add_parser(
            cmd,
            help="dry run: every rendered command per host (or: plan approve PLAN)"
            if cmd == "plan"
            else "execute a runbook (or a saved plan with --plan)",
        )
        if cmd not in named:
            continue
        c.add_argument("name", nargs="?" if cmd == "run" else None, help="runbook name or path")
        if cmd == "plan":
            c.add_argument("plan_file", nargs="?", help="with 'approve': the saved plan")
            c.add_argument(
                "-o",
                "--out",
                metavar="PLAN",
                help="save the plan (JSON, with its hash) for review and `run --plan`",
            )
            c.add_argument("--format", choices=["text", "md", "json"], default="text")
            c.add_argument(
                "--expires", metavar="DURATION", help="with -o: lifetime (24h, 7d; policy default)"
            )
            c.add_argument("--by", help="with 'approve': the approver's name (default: OS user)")
            c.add_argument("--note", help="with 'approve': a note recorded with the approval")
            c.add_argument(
                "--check",
                action="store_true",
                help="also run the preconditions and `safe` steps on the real targets",
            )
        c.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
        c.add_argument("--params", metavar="FILE", help="a YAML/JSON mapping of params")
        c.add_argument("-i", "--inventory", metavar="INV")
        if cmd == "run":
            c.add_argument(
                "--yes",
                action="store_true",
                help="answer confirm: questions with yes (never manual steps)",
            )
            c.add_argument(
                "--no-rollback", action="store_true", help="on failure, stop without rolling back"
            )
            c.add_argument("--ticket", help="change ticket id, recorded in the audit log")
            c.add_argument("--forks", type=int, default=10, help="hosts at once (default 10)")
            c.add_argument(
                "--accept-new-host-keys",
                action="store_true",
                help="record unknown SSH host keys (changed keys are still refused)",
            )
            c.add_argument("--quiet", action="store_true", help="do not echo command output")
            c.add_argument(
                "--from",
                dest="from_step",
                metavar="STEP",
                help="start at STEP (earlier steps are skipped; recorded)",
            )
            c.add_argument(
                "--reason", dest="from_reason", help="with --from: why, recorded in the audit log"
            )
            c.add_argument(
                "--plan",
                dest="plan_file",
                metavar="PLAN",
                help="execute exactly a saved, reviewed plan",
            )
            c.add_argument(
                "--require-approval",
                action="store_true",
                help="with --plan: refuse unless someone other than the operator approved it",
            )
            c.add_argument(
                "--operator",
                help="the operator's name, recorded in the audit log (default: OS user)",
            )

    if "checklist" in named:
        from runner.commands import checklist as _cl

        _cl.add_parser(sub)
    else:  # the same line of help as commands/checklist.py gives it
        sub.add_parser("checklist", help="checklist instances and sign-off")

    rs = sub.add_parser("resolve", help="record that a person finished or undid a step by hand")
    if "resolve" in named:
        rs.add_argument("run_id")
        rs.add_argument("--step", required=True, help="the step a person finished or undid")
        rs.add_argument("--by", required=True, help="who did it")
        rs.add_argument("--reason", required=True, help="what was done, recorded")
        rs.add_argument("--host", help="only on this host (default: every host it applies to)")

    for cmd in ("resume", "rollback"):
        r = sub.add_parser(
            cmd,
            help="continue an interrupted, failed or waiting run"
            if cmd == "resume"
            else "undo the completed steps of a run, in reverse order",
        )
        if cmd not in named:
            continue
        r.add_argument("run_id")
        r.add_argument(
            "-p",
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="secret params (never stored) again",
        )
        r.add_argument("--yes", action="store_true")
        r.add_argument("--quiet", action="store_true")
        r.add_argument("--forks", type=int, default=10)
        if cmd == "resume":
            r.add_argument(
                "--confirm", metavar="STEP", help="the manual step the run waits at is done"
            )
            r.add_argument("--by", help="with --confirm: who did it")
            r.add_argument(
                "--accept-changed-runbook",
                action="store_true",
                help="continue although the runbook file changed (recorded)",
            )
            r.add_argument(
                "--rerun-unknown",
                action="store_true",
                help="run again steps whose outcome was never recorded",
            )
            r.add_argument("--no-rollback", action="store_true")
        else:
            r.add_argument("--reason", help="why it is undone, recorded in the audit log")

    sc = sub.add_parser("schema", help="print a JSON Schema")
    if "schema" in named:
        sc.add_argument(
            "kind",
            nargs="?",
            default="runbook",
            choices=["runbook", "checklist", "inventory", "policy"],
        )

    im = sub.add_parser("import", help="a Markdown runbook -> runbooks and checklists; --check")
    if "import" in named:
        from runner.commands.import_md import add_arguments

        add_arguments(im)

    a = sub.add_parser(
        "audit", help="for auditors: verify, list, show, export, review; keygen, checkpoint, ship"
    )
    if "audit" in named:
        _add_audit(a)
    return p


def _add_audit(a: argparse.ArgumentParser) -> None:
    asub = a.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    av = asub.add_parser(
        "verify", help="recompute every chain, signature and the ledger (exit 4 on failure)"
    )
    av.add_argument("run_id", nargs="?")
    av.add_argument(
        "--public-key", metavar="FILE", help="require every closed run signed by this key"
    )
    av.add_argument(
        "--allowed-signers",
        metavar="FILE",
        help="check people's signatures against this file (default: the policy's)",
    )
    av.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="also prove nothing the checkpoint covered was dropped from or rewritten in the ledger",
    )
    av.add_argument(
        "--collected",
        metavar="FILE",
        help="verify a collector's copy (what `audit ship` sent) instead of the state dir",
    )
    acp = asub.add_parser("checkpoint", help="write the ledger's signed head (an anchor)")
    acp.add_argument("-o", "--out", required=True, metavar="FILE")
    asp = asub.add_parser("ship", help="send every record not yet sent to a syslog collector")
    asp.add_argument(
        "--to", metavar="URL", help="tcp://HOST:PORT or tls://HOST:PORT (env RUNBOOK_SHIP_TO)"
    )
    asp.add_argument(
        "--ca", metavar="FILE", help="with tls://: the CA that signed the collector's certificate"
    )
    al = asub.add_parser("list", help="one line per run")
    for flag in ("--runbook", "--actor", "--status", "--since", "--until", "--ticket"):
        al.add_argument(flag)
    al.add_argument(
        "--needs-review", action="store_true", help="emergency runs without a retroactive review"
    )
    ash = asub.add_parser("show", help="a run as a timeline")
    ash.add_argument("run_id")
    ax = asub.add_parser("export", help="a run, or all, as md, html, json or csv")
    ax.add_argument("run_id", nargs="?")
    ax.add_argument("--all", action="store_true")
    ax.add_argument("--format", choices=["md", "html", "json", "csv"], default="md")
    ax.add_argument("-o", "--out", metavar="FILE")
    ar = asub.add_parser("review", help="sign the retroactive review of an emergency run")
    ar.add_argument("run_id")
    ar.add_argument("--by", help="the reviewer (with --ssh-key: the key's principal)")
    ar.add_argument("--note")
    ak = asub.add_parser("keygen", help="write an Ed25519 key pair: PREFIX (0600) and PREFIX.pub")
    ak.add_argument("--out", default="runbook-signing-key", metavar="PREFIX")
    from runner.commands.audit_report import add_parser as add_report

    add_report(asub)


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = _parser(argv)
    args = parser.parse_args(argv)
    state = Path(args.state_dir)
    try:
        return _dispatch(args, state)
    except Error as exc:
        if args.debug:
            raise
        print(f"runbook: {exc}" if "\n" not in str(exc) else str(exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("runbook: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_USAGE


def _dispatch(args: argparse.Namespace, state: Path) -> int:
    cmd = args.command
    if cmd == "list":
        from runner.commands.listing import list_files

        return list_files(as_json=args.json)
    if cmd == "validate":
        from runner.commands.validate import validate

        return validate(args.files, inventory=args.inventory)
    if cmd == "show":
        from runner.commands.show import show

        return show(args.name, fmt=args.format)
    if cmd == "schema":
        from runner.schema import schema_text

        sys.stdout.write(schema_text(args.kind))
        return 0
    if cmd == "plan":
        from runner.commands.plan import approve, plan

        if args.name == "approve":
            if not args.plan_file:
                raise UsageError("usage: runbook plan approve PLAN --by NAME [--note TEXT]")
            return approve(
                args.plan_file,
                state,
                by=args.by,
                note=args.note,
                signing_key=args.signing_key,
                ssh_key=args.ssh_key,
            )
        fmt = "json" if args.json else args.format
        return plan(
            args.name,
            args.param,
            args.params,
            args.inventory,
            fmt=fmt,
            out=args.out,
            check=args.check,
            state_dir=state,
            expires=args.expires,
            ssh_key=args.ssh_key,
        )
    if cmd == "run":
        from runner.commands.run import RunArgs, run

        if not args.name and not args.plan_file:
            raise UsageError("runbook run: give a runbook NAME or --plan PLAN")
        return run(
            RunArgs(
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
            ),
            state,
        )
    if cmd == "checklist":
        from runner.commands.checklist import dispatch

        return dispatch(args, state)
    if cmd in ("resume", "rollback"):
        from runner.commands import resume as resume_cmd
        from runner.commands.run import RunArgs

        ra = RunArgs(
            name="",
            params=args.param,
            yes=args.yes,
            quiet=args.quiet,
            forks=args.forks,
            no_rollback=getattr(args, "no_rollback", False),
            signing_key=args.signing_key,
            ssh_key=args.ssh_key,
        )
        if cmd == "rollback":
            return resume_cmd.rollback(args.run_id, state, ra, reason=args.reason)
        return resume_cmd.resume(
            args.run_id,
            state,
            ra,
            confirm=args.confirm,
            by=args.by,
            accept_changed=args.accept_changed_runbook,
            rerun_unknown=args.rerun_unknown,
        )
    if cmd == "resolve":
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
    if cmd == "import":
        from runner.commands.import_md import dispatch as import_md

        return import_md(args)
    if cmd == "audit":
        from runner.commands import audit

        return audit.dispatch(args, state)
    raise AssertionError(cmd)  # pragma: no cover
