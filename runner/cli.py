"""The argument tree, built from the command table (commands/table.py); one error handler.

The handler maps errors to the exit codes of SPEC §5 and prints one clear line each (a
traceback only with --debug).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from runner import __version__
from runner.commands.table import COMMANDS, HIDDEN, Command
from runner.errors import EXIT_INTERRUPTED, EXIT_USAGE, Error

OVERVIEW = """\
runbook: run declarative runbooks locally or over SSH, with an audit log.

  runbook list                          the runbooks and checklists found
  runbook plan RUNBOOK -i INVENTORY     every rendered command per host; nothing runs
  runbook run RUNBOOK -i INVENTORY      execute it, with an audit log
  runbook inventory -i INVENTORY        hosts, groups and vars (Ansible inventories too)
  runbook audit verify                  check the audit log

`runbook --help` lists every command, `runbook COMMAND --help` its options.
"""


def _globals(p: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes, before or after its name. Below the top, their
    default is SUPPRESS, so a subcommand that was not given one keeps the top's value."""

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    p.add_argument(
        "--state-dir",
        default=default(os.environ.get("RUNBOOK_STATE_DIR", ".runbook")),
        metavar="DIR",
        help="audit log and state (env RUNBOOK_STATE_DIR; default ./.runbook)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="machine-readable output where it applies",
    )
    p.add_argument("--debug", action="store_true", default=default(False), help="show tracebacks")
    p.add_argument(
        "--signing-key",
        metavar="FILE",
        default=default(None),
        help="Ed25519 key that signs each run's closing record (env RUNBOOK_SIGNING_KEY)",
    )
    p.add_argument(
        "--ssh-key",
        metavar="FILE",
        default=default(None),
        help="your SSH key (or its .pub, held by ssh-agent): signs approvals, sign-offs, "
        "confirmations, reviews and plans as you (env RUNBOOK_SSH_KEY; docs/audit.md)",
    )


def _nested(argv: Sequence[str], word: str) -> tuple[str, ...]:
    """`plan approve` when `approve` directly follows `plan` (so `runbook plan -- approve`
    plans a runbook named approve); else `plan`."""
    i = list(argv).index(word)
    nxt = argv[i + 1] if i + 1 < len(argv) else ""
    return (word, nxt) if any(c.words == (word, nxt) for c in COMMANDS) else (word,)


def _parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The whole tree, except that a command other than the one in `argv` gets only its name
    and its line of help: building every command's arguments, and importing the checklist
    commands for theirs, costs ~7 ms of each start. The command being run always appears in
    argv as it is (argparse does not abbreviate subcommand names), so it is always complete;
    `runbook --help` lists the same lines either way."""
    named = set(argv)
    p = argparse.ArgumentParser(
        prog="runbook",
        description="Run declarative runbooks locally or over SSH, with an audit log.",
        epilog="Global options may also follow the command. RUNBOOK_PATH: directories "
        "(separated by ':') searched for runbooks/ and checklists/ instead of ./",
    )
    p.add_argument("--version", action="version", version=f"runbook {__version__}")
    _globals(p, top=True)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    rows = [c for c in COMMANDS if len(c.words) == 1]
    if "__complete" in named:
        rows.append(HIDDEN[0])
    for c in rows:
        cp = sub.add_parser(
            c.words[0],
            help=c.help or argparse.SUPPRESS,
            description=c.help,
            epilog=c.epilog or None,
        )
        if c.words[0] not in named:
            continue
        route = _nested(argv, c.words[0])
        nested = [n for n in COMMANDS if n.words[:1] == c.words and len(n.words) == 2]
        if len(route) == 2:
            inner = cp.add_subparsers(dest="subcommand", metavar="ACTION", required=True)
            for n in nested:
                np = inner.add_parser(n.words[1], help=n.help, description=n.help)
                if n.words == route:
                    _complete(np, n)
        else:
            _complete(cp, c)
    return p


def _complete(p: argparse.ArgumentParser, c: Command) -> None:
    c.arguments(p)
    _globals(p, top=False)
    for action in p._actions:  # nested actions (audit, checklist) take the globals too
        if isinstance(action, argparse._SubParsersAction):
            for leaf in action.choices.values():
                _globals(leaf, top=False)


def command_of(args: argparse.Namespace) -> Command:
    sub = getattr(args, "subcommand", None)
    words = (args.command, sub) if sub else (args.command,)
    return next(c for c in (*COMMANDS, *HIDDEN) if c.words == words)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if not argv:
        sys.stdout.write(OVERVIEW)
        return 0
    undecodable = next((a for a in argv if not _is_utf8(a)), None)
    if undecodable is not None:  # bytes the locale could not decode (os.fsdecode's surrogates)
        print(
            f"runbook: an argument is not valid UTF-8 ({undecodable!a}); the audit log "
            "records text as UTF-8",
            file=sys.stderr,
        )
        return EXIT_USAGE
    parser = _parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("give a COMMAND (runbook --help lists them)")
    state = Path(args.state_dir)
    try:
        return command_of(args).run(args, state)
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
