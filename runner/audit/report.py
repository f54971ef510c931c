"""A run read back from its log: its summary and the auditor's timeline (exports.py: documents).

Everything here reads the journal, which never held a secret, so no export can contain one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from runner.audit import identity, integrity
from runner.audit.chain import Verdict
from runner.audit.policy import Policy
from runner.audit.reviews import judge
from runner.execution.lifecycle import Lifecycle, derive
from runner.termsafe import neutralise, one_line


@dataclass
class RunSummary:
    run_id: str
    verdict: Verdict
    events: list[dict[str, Any]]
    reviews: list[dict[str, Any]] = field(default_factory=list)
    ledger_problems: list[str] = field(default_factory=list)

    def _first(self, event: str) -> dict[str, Any]:
        return next((e for e in self.events if e["event"] == event), {})

    @property
    def started_rec(self) -> dict[str, Any]:
        return self._first("run.started")

    @property
    def finished(self) -> dict[str, Any]:
        return self._first("run.finished")

    @property
    def runbook(self) -> str | None:
        return self.started_rec.get("runbook") or self._first("check.started").get("runbook")

    @property
    def actor(self) -> str:
        return str((self.events[0].get("actor") or {}).get("user", "")) if self.events else ""

    @property
    def operator(self) -> str:
        return str(self.started_rec.get("operator") or self.actor)

    @property
    def started(self) -> str | None:
        return self.events[0]["ts"] if self.events else None

    @property
    def ticket(self) -> str | None:
        return self.started_rec.get("ticket")

    @property
    def lifecycle(self) -> Lifecycle:
        """From the records that hold: a log that fails verification at record N says what
        happened up to N, never what was appended or changed from there."""
        held = self.events
        if not self.verdict.ok and self.verdict.first_bad is not None:
            held = [e for e in held if e["seq"] < self.verdict.first_bad]
        return derive(held)

    @property
    def outcome(self) -> str:
        """The run's last transition (lifecycle.py), not its first command's outcome."""
        if self._first("check.started"):
            return "check"
        if not self.events and not self.verdict.ok:
            return "missing"
        return self.lifecycle.state or "open"

    @property
    def holds(self) -> bool:
        """What `audit verify` says of this run: its log and its ledger entries."""
        return self.verdict.ok and not self.ledger_problems

    @property
    def verified(self) -> str:
        if not self.verdict.ok:
            if not self.events and self.verdict.first_bad is None:  # no log at all
                return f"FAILED: {self.verdict.reason}"
            return f"FAILED at record {self.verdict.first_bad}: {self.verdict.reason}"
        if self.ledger_problems:
            return f"FAILED: {self.ledger_problems[0]}"
        return "verified" if self.verdict.status == "ok" else self.verdict.status

    @property
    def last_hash(self) -> str:
        return self.verdict.last_hash

    @property
    def needs_review(self) -> bool:
        return self.started_rec.get("change") == "emergency" and not any(
            r.get("counts") for r in self.reviews
        )

    def row(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "runbook": self.runbook,
            "operator": self.operator,
            "actor": self.actor,
            "started": self.started,
            "duration": self.finished.get("duration", ""),
            "outcome": self.outcome,
            "exit_code": self.lifecycle.exit_code if self.lifecycle.history else None,
            "transitions": [
                {"state": t.state, "from": t.previous, "ts": t.ts, "by": t.by, "reason": t.reason}
                for t in self.lifecycle.history
            ],
            "ticket": self.ticket,
            "change": self.started_rec.get("change"),
            "verified": self.verified,
            "needs_review": self.needs_review,
            "reviewed_by": [identity.label(r) for r in self.reviews],  # "NAME (signed)"
        }


def summarize(
    v: Verdict,
    reviews: dict[str, list[dict[str, Any]]],
    ledger_problems: list[str],
    rules: Policy,
) -> RunSummary:
    """The run's summary, its reviews judged under `rules` (reviews.py)."""
    mine = [p for p in ledger_problems if v.run_id in p]
    s = RunSummary(v.run_id, v, v.events, [], mine)
    s.reviews = judge(rules, reviews.get(v.run_id, []), s.operator)
    return s


def summaries(
    report: integrity.Report, reviews: dict[str, list[dict[str, Any]]], rules: Policy
) -> list[RunSummary]:
    """Every run of the report, and a row for each run the ledger lists whose log is gone: a
    listing that left them out would hide what `audit verify` finds."""
    out = [summarize(v, reviews, report.ledger, rules) for v in report.verdicts if v.kind == "run"]
    return out + [missing(run_id, problem) for run_id, problem in report.missing.items()]


def missing(run_id: str, problem: str) -> RunSummary:
    """A run the ledger lists whose log is gone: no records, and the verdict that says so."""
    return RunSummary(
        run_id, Verdict(run_id, ok=False, records=0, status="failed", reason=problem), []
    )


def event_line(e: dict[str, Any]) -> str | None:
    """One timeline line per event an auditor cares about."""
    ev = e["event"]
    host = f"[{e['host']}] " if e.get("host") else ""
    if ev == "step.started":
        return f"{host}step {e['step']} started (attempt {e.get('attempt', 1)}): {e.get('command', '')}"
    if ev in ("step.finished", "rollback.finished"):
        out = e.get("stdout", {})
        excerpt = (out.get("head") or "").strip().splitlines()[:3]
        text = f"{host}{ev.split('.')[0]} {e['step']}: exit {e.get('exit')}, {e.get('duration', 0):.3f}s, {'ok' if e.get('ok') else 'FAILED: ' + e.get('reason', '')}"
        text += f"; stdout {out.get('bytes', 0)} bytes sha256 {str(out.get('sha256', ''))[:16]}"
        return text + "".join(f"\n      | {x}" for x in excerpt)
    if ev == "check":
        return f"{host}check ({e.get('scope')}) {e.get('name') or e.get('command', '')}: {'ok' if e.get('ok') else 'FAILED: ' + str(e.get('reason', ''))}"
    if ev == "step.outcome":
        return f"{host}step {e['step']}: {e['status']}" + (
            f" ({e['reason']})" if e.get("reason") else ""
        )
    if ev == "step.skipped":
        return f"{host}step {e['step']} skipped: {e.get('reason')}"
    if ev == "confirm":
        return f"{host}confirmation '{e.get('question')}': {'yes' if e.get('answer') else 'no'} ({e.get('via')}, by {e['actor']['user']})"
    if ev in ("manual.confirmed", "manual.declined"):
        return f"{host}manual step {e['step']} {ev.split('.')[1]} by {identity.label(e)}"
    if ev == "run.resumed":
        done = ", ".join(
            f"{c['step']} on {c['host']} by {identity.label(c)}" for c in e.get("confirmed", [])
        )
        return f"resumed by {e['actor']['user']}" + (
            f"; manual step confirmed: {done}" if done else ""
        )
    if ev == "rollback.requested":
        return f"rollback requested by {e['actor']['user']}: {e.get('reason') or 'no reason given'}"
    if ev in ("manual.shown", "step.waiting"):
        return f"{host}manual step {e['step']} {'shown' if ev == 'manual.shown' else 'waits for a person'}"
    if ev == "run.finished":
        return f"finished: {e.get('outcome')} (exit {e.get('exit_code')})"
    if ev.startswith("rollback.") and ev != "rollback.started":
        detail = e.get("reason") or ", ".join(e.get("steps", []))
        return f"{host}{ev} {e.get('step', '')} {detail}".rstrip()
    if ev == "run.state":
        why = f": {e['reason']}" if e.get("reason") else ""
        return f"state {e.get('from') or '-'} -> {e['state']} (by {e.get('by')}){why}"
    if ev == "step.resolved":
        return f"{host}step {e['step']} {'undone' if e.get('phase') == 'rollback' else 'done'} by hand by {e.get('by')}: {e.get('reason')}"
    if ev == "run.signature":
        return f"closing record signed by key {e['key_id']}"
    if ev in ("run.aborted", "run.error", "rollout.stopped", "batch.started"):
        return f"{host}{ev}: {e.get('reason') or e.get('hosts') or ''}"
    return None


def timeline(s: RunSummary) -> str:
    if not s.events and not s.verdict.ok:  # a deleted log: nothing to show but that
        return printable(f"run {s.run_id}\n\noutcome:  {s.outcome}\naudit:    {s.verified}")
    # every recorded value on one line, but the outputs, whose lines are shown as an excerpt
    s = replace(
        s,
        events=[one_line(e, keep=("stdout", "stderr")) for e in s.events],
        reviews=[one_line(r) for r in s.reviews],
    )
    st = s.started_rec
    out = [
        f"run {s.run_id}",
        f"  runbook:   {s.runbook} ({st.get('file')}, sha256 {st.get('runbook_sha256')})",
        f"  tool:      runbook {st.get('tool_version')}",
        f"  operator:  {s.operator} (OS user {s.actor}@{(s.events[0].get('actor') or {}).get('host', '') if s.events else ''})",
        f"  ticket:    {s.ticket or '-'}   change: {st.get('change') or '-'}",
        f"  params:    {json.dumps(st.get('params', {}), sort_keys=True)}",
        f"  inventory: {json.dumps(st.get('inventory'))}",
        f"  plan hash: {st.get('plan_hash')}"
        + (f" (from {st['plan_file']})" if st.get("plan_file") else ""),
        "",
    ]
    for e in s.events:
        line = event_line(e)
        if line:
            out.append(f"{e['ts']}  {line}")
    life = s.lifecycle
    code = life.exit_code if life.history else "-"
    out += ["", f"outcome:  {s.outcome} (exit {code})", "history:"]
    out += [
        f"  {t.ts}  {t.state:<15} by {t.by}" + (f": {t.reason}" if t.reason else "")
        for t in life.history
    ]
    for r in s.reviews:
        out.append(
            f"reviewed: by {identity.label(r)} at {r['ts']}"
            + (f": {r['note']}" if r.get("note") else "")
            + (f" (DOES NOT COUNT: {r['why_not']})" if r.get("why_not") else "")
        )
    out.append(f"audit:    {s.verified}" + "".join(f"\n          {p}" for p in s.ledger_problems))
    return printable("\n".join(out))


# What a terminal must not receive as it is: one definition, termsafe.py (bidi overrides too).
printable = neutralise
