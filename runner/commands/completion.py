"""`runbook completion bash|zsh|fish`: a script that asks `runbook __complete WORDS…` for the
candidates, so completion always knows today's commands, runbooks, checklists and run ids."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

SCRIPTS = {
    "bash": """\
# runbook completion for bash: source <(runbook completion bash)
_runbook() {
    local IFS=$'\\n'
    COMPREPLY=($(runbook __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _runbook runbook""",
    "zsh": """\
# runbook completion for zsh: source <(runbook completion zsh)
_runbook() {
    local -a candidates
    candidates=("${(@f)$(runbook __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    compadd -a candidates
}
compdef _runbook runbook""",
    "fish": """\
# runbook completion for fish: runbook completion fish | source
complete -c runbook -f -a '(runbook __complete -- (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'""",
}

RUN_ID_COMMANDS = {("resume",), ("rollback",), ("resolve",), ("audit", "show"), ("audit", "export")}
RUN_ID_COMMANDS |= {("audit", "verify"), ("audit", "review")}
RUNBOOK_COMMANDS = {("plan",), ("run",), ("show",), ("validate",)}


def script(shell: str) -> str:
    return SCRIPTS[shell]


def candidates(words: Sequence[str], state: Path) -> list[str]:
    """What may come at the last word (possibly empty) after `runbook` and the words before."""
    *before, current = list(words) or [""]
    from runner.cli import _parser

    parser = _parser(before)
    positional = [w for w in before if not w.startswith("-")]
    path, p = _walk(parser, positional)
    if current.startswith("-"):
        opts = [s for a in p._actions for s in a.option_strings]
        return sorted(o for o in opts if o.startswith(current))
    subs = _subcommands(p)
    if subs:
        return [s for s in subs if s.startswith(current)]
    return [c for c in _values(path, state, before) if c.startswith(current)]


def _walk(
    parser: argparse.ArgumentParser, positional: list[str]
) -> tuple[tuple[str, ...], argparse.ArgumentParser]:
    """Follow the subcommands named so far; the words of the command and its parser."""
    path: tuple[str, ...] = ()
    p = parser
    for w in positional:
        subs = _subparsers(p)
        if subs is None or w not in subs.choices:
            break
        path, p = (*path, w), subs.choices[w]
    return path, p


def _subparsers(
    p: argparse.ArgumentParser,
) -> argparse._SubParsersAction[argparse.ArgumentParser] | None:
    return next((a for a in p._actions if isinstance(a, argparse._SubParsersAction)), None)


def _subcommands(p: argparse.ArgumentParser) -> list[str]:
    subs = _subparsers(p)
    return [] if subs is None else [n for n in subs.choices if not n.startswith("_")]


def _values(path: tuple[str, ...], state: Path, before: Sequence[str]) -> list[str]:
    from runner.format.loader import discover

    if path == ("plan",) and [w for w in before if not w.startswith("-")] == ["plan"]:
        return ["approve", "show", *(p.stem for p in discover("runbook"))]
    if path in RUNBOOK_COMMANDS:
        return [p.stem for p in discover("runbook")]
    if path[:1] == ("checklist",):
        return [p.stem for p in discover("checklist")]
    if path in RUN_ID_COMMANDS:
        if "--state-dir" in before[:-1]:
            state = Path(before[list(before).index("--state-dir") + 1])
        from runner.audit.journal import runs_dir

        return sorted(p.stem for p in runs_dir(state).glob("*.jsonl"))
    return []
