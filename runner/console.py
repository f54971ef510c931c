"""Terminal output: the only module that imports rich. Plain lines when not a terminal.

Everything printed here may hold a host's bytes (its output, a notice, a command line built from
inventory values), so each line goes through termsafe.neutralise, the function `audit show`
uses: an escape sequence is shown as `\\x1b[2J`, never acted on (docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from runner.execution.eventkinds import Event
from runner.recap import Recap
from runner.termsafe import is_safe, neutralise

_MARK = {"ok": "✓", "failed": "✗", "skipped": "–"}


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


class Console:
    """Subscribes to engine events; prints a line per step and the live output of the step."""

    def __init__(self, stream: TextIO | None = None, *, show_output: bool = True) -> None:
        self.stream = stream or sys.stdout
        self.show_output = self.shows_output = show_output  # the bus skips live output if False
        self.tty = self.stream.isatty()
        self.color = self.tty and not os.environ.get("NO_COLOR")
        self._rich: Any = None
        self._status: Any = None  # rich spinner naming the steps running now (terminal only)
        self._running: dict[tuple[str, str], float] = {}
        self._asking = asyncio.Lock()  # one question at a time, whichever host asks
        self.recap = Recap()
        self.gone = False  # the reader went away (see _lost)
        if self.tty:
            from rich.console import Console as RichConsole

            # rich honours NO_COLOR itself: the spinner stays, the colours go
            # emoji=False: `:white_check_mark:` in a host's output stays text, not a ✅
            self._rich = RichConsole(file=self.stream, highlight=False, emoji=False)

    def line(self, text: str, style: str = "") -> None:
        if self.gone:
            return
        text = neutralise(text)
        try:
            if self._rich is not None:
                self._rich.print(text, style=(style or None) if self.color else None, markup=False)
            else:
                self.stream.write(text + "\n")
                self.stream.flush()
        except OSError:
            self._lost()

    def _lost(self) -> None:
        """Nobody reads the console any more (`runbook run x | head -2`: EPIPE; a terminal that
        hung up: EIO). The run goes on, and the audit log has it all: printing just stops."""
        self.gone = True
        self._rich = None
        null = open(os.devnull, "w")  # noqa: SIM115 - the stream's descriptor from now on
        # not a file descriptor (a test's StringIO): nothing to redirect
        with contextlib.suppress(OSError, ValueError):
            os.dup2(null.fileno(), self.stream.fileno())
        if self.stream is sys.stdout:
            sys.stdout = null

    def _spin(self) -> None:
        if self._rich is None:
            return
        if not self._running or self._asking.locked():  # a spinner would draw over a prompt
            if self._status is not None:
                self._status.stop()
                self._status = None
            return
        if self._status is None:
            self._status = self._rich.status(_Running(self._running))
            self._status.start()

    def event(self, e: Event) -> None:
        name, f = e.kind, e.fields()
        if name == "run.finished":  # an interrupted run leaves steps without an outcome
            self._running.clear()
        key = (f.get("host", ""), f.get("step", ""))
        if name == "step.started" and f.get("attempt", 1) == 1:
            self._running[key] = time.monotonic()
        self.recap.event(e)
        elapsed = ""
        if name == "step.outcome" and key in self._running:
            elapsed = f" in {time.monotonic() - self._running.pop(key):.2f}s"
        self._show(name, f, elapsed)
        self._spin()

    def _show(self, name: str, f: Mapping[str, Any], elapsed: str) -> None:
        host = f.get("host", "")
        where = f"[{host}] " if host and host != "local" else ""
        if name == "run.started":
            self.line(f"▶ {f['runbook']} — run {f['run_id']} on {', '.join(f['hosts'])}", "bold")
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
            self.line(f"{where}{mark} {f['step']} {f['status']}{elapsed}{tail}", style)
        elif name == "check" and not f["ok"]:
            self.line(
                f"{where}  check '{f.get('name', '')}' (attempt {f['attempt']}): {f.get('reason', '')}",
                "yellow",
            )
        elif name == "step.waiting":
            what = "its undo" if f.get("phase") == "rollback" else "the step"
            self.line(
                f"{where}⏸ waiting for a person ({f['reason']}); when {what} is done: "
                f"{f['resume']}",
                "magenta",
            )
        elif name == "manual.shown":
            self.line(f"{where}✋ manual step {f['step']}:\n{f['instructions']}", "magenta")
        elif name in (  # rollback.none (a step with nothing to undo) is in the log only
            "rollback.begin",
            "rollback.failed",
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
            command = (f.get("command") or "").splitlines()[:1]  # which undo, as it ran
            undo = f" ({_short(command[0])})" if command else ""
            result = "ok" if f["ok"] else f.get("reason", "failed")
            self.line(f"{where}↩ rolled back {f['step']}{undo}: {result}", "yellow")
        elif name == "interrupt":
            self.line(f"⚠ {f['signal']}: {f['then']}", "bold yellow")
        elif name == "host.notice":
            self.line(f"{where}ℹ {f['message']}", "dim")
        elif name == "run.finished":
            for ln in self.recap.lines(f.get("planned", [])):
                self.line(ln, "bold" if ln == "RECAP" else "")
            style = "bold green" if f["exit_code"] == 0 else "bold red"
            self.line(f"■ {f['outcome']} (exit {f['exit_code']}) in {f['duration']:.2f}s", style)

    def sync(self) -> None:
        return None  # the screen keeps nothing

    def output(self, host: str, step: str, stream: str, text: str) -> None:
        if not self.show_output or self.gone:
            return
        try:
            self._output(host, step, stream, text)
        except OSError:
            self._lost()

    def _output(self, host: str, step: str, stream: str, text: str) -> None:
        prefix = neutralise(f"[{host}] ") if host != "local" else ""
        rows = text.splitlines()  # a CR (a progress bar's) starts a new line, as it always did
        if not is_safe(text):  # made visible after the split, so nothing else acts as a break
            rows = [neutralise(ln) for ln in rows]
        if self._rich is not None:
            for ln in rows:
                self._rich.print(
                    f"{prefix}  │ {ln}", markup=False, style="dim" if stream == "stderr" else None
                )
            return
        target = sys.stderr if stream == "stderr" else self.stream
        target.write("".join([f"{prefix}  │ {ln}\n" for ln in rows]))  # one write per chunk
        target.flush()

    async def ask(self, question: str, default: bool = False) -> bool | None:
        """y/n at the terminal; None without one. Waits in the event loop, not in input(), so
        a Ctrl-C at the prompt is handled at once and other hosts' steps go on meanwhile."""
        if not interactive():
            return None
        async with self._asking:
            self._spin()
            self.stream.write(f"{neutralise(question)} {'[Y/n]' if default else '[y/N]'} ")
            self.stream.flush()
            line = await _read_line(sys.stdin.fileno())
        self._spin()
        if line is None:
            return None
        answer = line.strip().lower()
        return default if not answer else answer in ("y", "yes")

    async def choose(self, question: str, keys: str) -> str | None:
        """One of `keys` (letters) typed at the terminal; None without one or at end of input.
        There is no default: Enter alone asks again, so no keystroke decides by accident."""
        if not interactive():
            return None
        async with self._asking:
            self._spin()
            while True:
                self.stream.write(f"{neutralise(question)} ")
                self.stream.flush()
                line = await _read_line(sys.stdin.fileno())
                if line is None:
                    break
                answer = line.strip().lower()[:1]
                if answer and answer in keys:
                    break
                self.stream.write(f"  (answer one of: {', '.join(keys)})\n")
        self._spin()
        return None if line is None else answer


async def _read_line(fd: int) -> str | None:
    """One line from a terminal, read when the loop says it is ready; None at end of input."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes | None] = loop.create_future()
    buf = bytearray()

    def readable() -> None:
        try:
            chunk = os.read(fd, 1024)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        buf.extend(chunk)
        if (not chunk or b"\n" in buf) and not done.done():
            done.set_result(bytes(buf) if buf else None)

    loop.add_reader(fd, readable)
    try:
        data = await done
    finally:
        loop.remove_reader(fd)
    return None if data is None else data.decode(errors="replace").split("\n")[0]


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class _Running:
    """Re-rendered by rich at every spinner refresh, so elapsed times tick while a step runs."""

    def __init__(self, running: dict[tuple[str, str], float]) -> None:
        self.running = running

    def __rich__(self) -> str:
        now = time.monotonic()
        steps = ", ".join(
            f"{h + ':' if h != 'local' else ''}{s} {now - t:.0f}s"
            for (h, s), t in self.running.items()
        )
        return f"running {steps}"
