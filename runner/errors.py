"""One error base; the CLI's single handler maps each kind to an exit code of SPEC §5."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_FAILED = 1  # the run failed and was rolled back cleanly, or halted by policy
EXIT_USAGE = 2  # bad input or usage: nothing was executed
EXIT_ROLLBACK_FAILED = 3  # a rollback failed or was incomplete: a person must act
EXIT_AUDIT = 4  # audit verification failed
EXIT_WAITING = 5  # at a manual step with no terminal: `runbook resume RUN_ID --confirm STEP`
EXIT_INTERRUPTED = 130

# One command that starts several runs (`checklist run`) exits with the most serious of their
# codes, in this order: hosts left half-changed first (a person must act), then an audit trail
# that does not hold, a run cut short, a run waiting for a person, a clean failure, nothing run.
SEVERITY = (
    EXIT_ROLLBACK_FAILED,
    EXIT_AUDIT,
    EXIT_INTERRUPTED,
    EXIT_WAITING,
    EXIT_FAILED,
    EXIT_USAGE,
    EXIT_OK,
)


def most_serious(codes: Iterable[int]) -> int:
    return min(codes, key=SEVERITY.index, default=EXIT_OK)


class Error(Exception):
    """Base of every error the CLI reports as one clear line."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class Location:
    """Where in which file: `runbooks/x.yaml:14:7: steps[3].run`."""

    file: str
    line: int = 0
    col: int = 0
    path: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}:{self.col}"
        return f"{where}: {self.path}" if self.path else where


@dataclass(frozen=True)
class Problem:
    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


@dataclass
class InvalidInput(Error):
    """One or more problems found in input files; nothing was executed."""

    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class UsageError(Error):
    """Bad command-line usage or a bad value given on the command line."""


class AuditError(Error):
    exit_code = EXIT_AUDIT


class StateError(Error):
    """The state directory cannot be read or written (fail closed: nothing more runs)."""

    exit_code = EXIT_USAGE


class StoppedMidRun(StateError):
    """The state could not be written once a run had begun (a full disk): nothing more ran, but
    commands before it may have. Exit 2 would say nothing was executed: a person must look."""

    exit_code = EXIT_ROLLBACK_FAILED
