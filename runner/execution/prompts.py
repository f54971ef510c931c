"""Questions to the operator during a run: a step's `confirm:`, a batch gate, a manual step's
`Done?`. A question asked during forward work is stopped by an interrupt like a command is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from runner.execution.eventkinds import Confirmed
from runner.execution.events import Bus
from runner.execution.interrupts import Interrupt
from runner.format.inventory import Host
from runner.format.model import Step
from runner.format.render import render
from runner.planning.planned import Context

# ask(question, default) -> True/False, or None when there is no terminal to ask at
Ask = Callable[[str, bool], Awaitable[bool | None]]
# choose(question, keys) -> one of the letters in keys, or None when there is no terminal
Choose = Callable[[str, str], Awaitable[str | None]]


async def no_terminal(question: str, keys: str) -> str | None:
    return None


class Prompts:
    def __init__(
        self, prompt: Ask, choose: Choose, interrupt: Interrupt, *, yes: bool = False
    ) -> None:
        self.prompt = prompt
        self.choose = choose
        self.interrupt = interrupt
        self.yes = yes

    async def ask(self, question: str, forward: bool) -> tuple[bool | None, bool]:
        """(answer, interrupted): a question before or during a step is stopped by interrupts."""
        if not forward:
            return await self.prompt(question, False), False
        if self.interrupt.signal:
            return None, True
        answer, stopped = await self.interrupt.unless_stopped(self.prompt(question, False))
        return answer, stopped

    async def confirm(self, bus: Bus, h: Host, step: Step, ctx: Context, sid: str) -> str:
        """'' when the step's `confirm:` question was answered yes (or --yes), else why not."""
        assert step.confirm is not None
        question = render(step.confirm, ctx)
        answer: bool | None = True
        via, stopped = "--yes", False
        if not self.yes:
            (answer, stopped), via = await self.ask(question, True), "terminal"
        if stopped:
            return f"interrupted ({self.interrupt.signal}) at the question"
        if answer is None:
            return "needs confirmation, but there is no terminal (use --yes to answer confirm: questions)"
        bus.emit(Confirmed(question, answer, via, host=h.name, step=sid))
        return "" if answer else "declined by the operator"
