"""The end of a multi-host run, like Ansible's PLAY RECAP: per host, how many steps were ok,
failed, skipped and rolled back, or that the host was never started. Counted from the same
events the journal records, by the console (a subscriber), so it cannot disagree with the log.

A command that only rolls back (`runbook rollback RUN_ID`, or `resume` of a run stopped inside
its rollback) runs no steps: its recap counts, per host, the steps it undid and the undo that
failed, or says that the host had nothing left to undo.
"""

from __future__ import annotations

from collections import Counter

from runner.execution.eventkinds import Event

COLUMNS: tuple[str, ...] = ("ok", "failed", "skipped", "rolled back")
UNDO_COLUMNS: tuple[str, ...] = ("rolled back", "undo failed")


class Recap:
    def __init__(self) -> None:
        self.status: dict[str, dict[str, str]] = {}  # host -> step -> its last status
        self.undone: dict[str, set[str]] = {}
        self.undo_failed: dict[str, set[str]] = {}
        self.unwound: set[str] = set()  # hosts whose rollback began in this command
        self.waiting: set[str] = set()  # hosts waiting for a person (a manual step or undo)
        self.undo_only: bool | None = None  # this command opened in the rollback: no steps run

    def event(self, e: Event) -> None:
        name, f = e.kind, e.fields()
        if name == "run.state" and self.undo_only is None:  # the command's opening transition
            self.undo_only = f["state"] == "rolling-back"
        host, step = f.get("host"), str(f.get("step", ""))
        if host and name == "rollback.begin":
            self.unwound.add(host)
        if not host or not step or f.get("caller"):  # the runbook's own steps only
            return
        if name == "step.outcome":
            self.status.setdefault(host, {})[step] = str(f["status"])
        elif name == "step.skipped":  # a `when:` skip also has a step.outcome: one count
            self.status.setdefault(host, {})[step] = "skipped"
        elif name == "rollback.done":
            self.undone.setdefault(host, set()).add(step)
        elif name == "rollback.failed":
            self.undo_failed.setdefault(host, set()).add(step)
        elif name == "step.waiting":
            self.waiting.add(host)

    def lines(self, planned: list[str]) -> list[str]:
        """The recap's lines, or none for a run on one host (its steps' lines say it all)."""
        if len(planned) < 2:
            return []
        width = max(len(h) for h in planned)
        return ["RECAP", *(f"{host:<{width}}  {self._host(host)}" for host in planned)]

    def _host(self, host: str) -> str:
        if self.undo_only:
            if host not in self.unwound:
                return "nothing left to undo"
            c = Counter(
                {
                    "rolled back": len(self.undone.get(host, ())),
                    "undo failed": len(self.undo_failed.get(host, ())),
                }
            )
            columns = UNDO_COLUMNS
        elif host in self.status or host in self.waiting:  # waiting at its first step, maybe
            c = Counter(self.status.get(host, {}).values())
            c["rolled back"] = len(self.undone.get(host, ()))
            columns = COLUMNS
        else:
            return "never started"
        line = "  ".join(f"{k}={c[k]}" for k in columns)
        return line + ("  waiting for a person" if host in self.waiting else "")
