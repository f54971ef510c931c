"""The end of a multi-host run, like Ansible's PLAY RECAP: per host, how many steps were ok,
failed, skipped and rolled back, or that the host was never started. Counted from the same
events the journal records, by the console (a subscriber), so it cannot disagree with the log.
"""

from __future__ import annotations

from collections import Counter

from runner.execution.eventkinds import Event

COLUMNS = ("ok", "failed", "skipped", "rolled back")


class Recap:
    def __init__(self) -> None:
        self.status: dict[str, dict[str, str]] = {}  # host -> step -> its last status
        self.undone: dict[str, set[str]] = {}

    def event(self, e: Event) -> None:
        name, f = e.kind, e.fields()
        host, step = f.get("host"), str(f.get("step", ""))
        if not host or not step or f.get("caller"):  # the runbook's own steps only
            return
        if name == "step.outcome":
            self.status.setdefault(host, {})[step] = str(f["status"])
        elif name == "step.skipped":  # a `when:` skip also has a step.outcome: one count
            self.status.setdefault(host, {})[step] = "skipped"
        elif name == "rollback.done":
            self.undone.setdefault(host, set()).add(step)

    def lines(self, planned: list[str]) -> list[str]:
        """The recap's lines, or none for a run on one host (its steps' lines say it all)."""
        if len(planned) < 2:
            return []
        width = max(len(h) for h in planned)
        out = ["RECAP"]
        for host in planned:
            if host not in self.status:
                out.append(f"{host:<{width}}  never started")
                continue
            c = Counter(self.status[host].values())
            c["rolled back"] = len(self.undone.get(host, ()))
            out.append(f"{host:<{width}}  " + "  ".join(f"{k}={c[k]}" for k in COLUMNS))
        return out
