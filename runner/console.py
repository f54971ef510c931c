"""Terminal output: the only module that imports rich. Plain lines when not a terminal."""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

_MARK = {"ok": "✓", "failed": "✗", "skipped": "–"}


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


class Console:
    """Subscribes to engine events; prints a line per step and the live output of the step."""

    def __init__(self, stream: TextIO | None = None, *, show_output: bool = True) -> None:
        self.stream = stream or sys.stdout
        self.show_output = show_output
        self.tty = self.stream.isatty()
        self.color = self.tty and not os.environ.get("NO_COLOR")
        self._rich: Any = None
        if self.color:
            from rich.console import Console as RichConsole

            self._rich = RichConsole(file=self.stream, highlight=False)

    def line(self, text: str, style: str = "") -> None:
        if self._rich is not None:
            self._rich.print(text, style=style or None, markup=False)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def event(self, name: str, f: dict[str, Any]) -> None:
        host = f.get("host", "")
        where = f"[{host}] " if host and host != "local" else ""
        if name == "run.started":
            self.line(f"▶ {f['runbook']} — run {f['run_id_']} on {', '.join(f['hosts'])}", "bold")
        elif name == "step.started":
            self.line(
                f"{where}→ {f['step']}: {f['command'].splitlines()[0] if f['command'] else ''}",
                "cyan",
            )
        elif name == "step.finished" and not f["ok"]:
            self.line(f"{where}  attempt {f['attempt']}: {f.get('reason', '')}", "yellow")
        elif name == "step.outcome":
            mark = _MARK.get(f["status"], "?")
            tail = f" ({f['reason']})" if f.get("reason") else ""
            style = {"ok": "green", "failed": "red", "skipped": "dim"}.get(f["status"], "")
            self.line(f"{where}{mark} {f['step']} {f['status']}{tail}", style)
        elif name == "check" and not f["ok"]:
            self.line(
                f"{where}  check '{f.get('name', '')}' (attempt {f['attempt']}): {f.get('reason', '')}",
                "yellow",
            )
        elif name == "manual.shown":
            self.line(f"{where}✋ manual step {f['step']}:\n{f['instructions']}", "magenta")
        elif name in (
            "rollback.begin",
            "rollback.failed",
            "rollback.none",
            "rollback.skipped",
            "run.aborted",
            "rollout.stopped",
        ):
            detail = f.get("reason") or ", ".join(f.get("steps", []))
            self.line(
                f"{where}↩ {name}: {f.get('step', '')} {detail}".rstrip(),
                "red" if "fail" in name or "abort" in name else "yellow",
            )
        elif name == "rollback.finished":
            self.line(
                f"{where}↩ rolled back {f['step']}: {'ok' if f['ok'] else f.get('reason', 'failed')}",
                "yellow",
            )
        elif name == "run.finished":
            style = "bold green" if f["exit_code"] == 0 else "bold red"
            self.line(f"■ {f['outcome']} (exit {f['exit_code']}) in {f['duration']:.2f}s", style)

    def output(self, host: str, step: str, stream: str, text: str) -> None:
        if not self.show_output:
            return
        prefix = f"[{host}] " if host != "local" else ""
        target = sys.stderr if stream == "stderr" and not self.tty else self.stream
        for ln in text.splitlines():
            target.write(f"{prefix}  │ {ln}\n")
        target.flush()

    def ask(self, question: str) -> bool | None:
        if not interactive():
            return None
        try:
            answer = input(f"{question} [y/N] ")
        except EOFError:
            return None
        return answer.strip().lower() in ("y", "yes")


class JournalSink:
    """Writes every engine event to the audit journal (live output is not journaled)."""

    def __init__(self, journal: Any) -> None:
        self.journal = journal

    def event(self, name: str, f: dict[str, Any]) -> None:
        self.journal.append(name, {k: v for k, v in f.items() if not k.endswith("_")})

    def output(self, host: str, step: str, stream: str, text: str) -> None:
        return None
