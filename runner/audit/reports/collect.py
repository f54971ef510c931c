"""Everything an audit report shows, read from the state dir and verified, as plain values.

Nothing here trusts a journal it has not verified: the verdicts come from integrity.verify (the
same checks as `audit verify`), and each run, checklist, approval and review carries its own.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import __version__
from runner.audit import identity, integrity, policy, reviews, signing, timespec
from runner.audit.chain import Verdict, verify_run
from runner.audit.journal import now
from runner.audit.ledger import ledger_path
from runner.audit.report import RunSummary, summarize
from runner.audit.reports.hostrows import StepRow, per_host
from runner.audit.reports.periods import never_started, overlaps
from runner.audit.reports.why import explained
from runner.checklists import definition as checklist
from runner.checklists import signoffs
from runner.checklists import state as checklist_state
from runner.execution.lifecycle import Transition, derive


@dataclass(frozen=True)
class Period:
    """`--since`/`--until` as UTC timestamps, each end included (`parse` reads what `audit
    list` reads: dates, times, today, yesterday, ages; a date alone as `--until` is that whole
    day)."""

    since: str | None = None
    until: str | None = None

    @classmethod
    def parse(cls, since: str | None, until: str | None) -> Period:
        return cls(
            timespec.parse(since, flag="--since") if since else None,
            timespec.parse(until, flag="--until", end=True) if until else None,
        )

    def holds(self, ts: str) -> bool:
        return (not self.since or ts >= self.since) and (not self.until or ts <= self.until)


@dataclass
class Approval:
    ts: str
    plan_hash: str
    runbook: str
    by: str
    meaning: str
    note: str
    vouched: bool  # sealed in the ledger (and verified with the key, when one is given)


@dataclass
class RunView:
    summary: RunSummary
    state: str
    transitions: list[tuple[Transition, str]]  # each with why it happened (why.py)
    hosts: dict[str, list[StepRow]]
    approvals: list[Approval]

    @property
    def run_id(self) -> str:
        return self.summary.run_id

    @property
    def started(self) -> dict[str, Any]:
        return self.summary.started_rec

    @property
    def failed_rollback(self) -> bool:
        """A rollback that failed, or began and never finished."""
        if self.state in ("rollback-failed", "rolling-back"):
            return True
        return any(
            "rollback" in r.kind and r.ok is False for rows in self.hosts.values() for r in rows
        )


@dataclass
class ChecklistView:
    instance: checklist_state.Instance
    verdict: Verdict
    overdue: bool

    @property
    def state(self) -> str:
        return "completed" if self.instance.completed else ("overdue" if self.overdue else "open")


@dataclass
class Report:
    generated: str
    version: str
    period: Period
    filters: dict[str, str]
    key: str  # which public key the signatures were checked with, for people
    signers: str  # the allowed-signers file people's signatures were checked against, or ""
    never_started: list[str]  # checklist instances of past periods nobody started (periods.py)
    journals: list[Verdict]  # every journal in scope, with its verdict
    ledger: Verdict | None
    ledger_problems: list[str]
    runs: list[RunView]
    checklists: list[ChecklistView]

    @property
    def ok(self) -> bool:
        ledger_ok = self.ledger is None or self.ledger.ok
        return ledger_ok and not self.ledger_problems and all(v.ok for v in self.journals)

    @property
    def verdict(self) -> str:
        if not self.ok:
            return "SOME JOURNALS DO NOT HOLD"
        return "every journal in scope holds" if self.journals else "no journal in scope"

    @property
    def period_text(self) -> str:
        """The period asked for; an open end says which record it reached."""
        stamps = [r.summary.started or "" for r in self.runs] + [
            e["ts"] for c in self.checklists for e in c.verdict.events
        ]
        first, last = (min(stamps), max(stamps)) if stamps else ("-", "-")
        since = self.period.since or f"the first record ({first})"
        until = self.period.until or f"the last record ({last})"
        return f"{since} to {until}, UTC"


def collect(
    state_dir: Path,
    period: Period,
    *,
    runbook: str | None = None,
    ticket: str | None = None,
    public_key: str | None = None,
    allowed_signers: str | None = None,
) -> Report:
    """Verified as `audit verify` does: chains, run signatures, the ledger, and every person's
    signature against the allowed signers (`allowed_signers`, else the policy's)."""
    report = integrity.verify(state_dir, public_key=public_key)
    rules = policy.load()
    if allowed_signers:
        rules = dataclasses.replace(rules, allowed=Path(allowed_signers))
    allowed = rules.allowed
    signoffs.check_verdicts(report.verdicts, allowed)
    report.ledger += signoffs.check_ledger(state_dir, allowed)
    by_kind: dict[str, list[Verdict]] = {}
    for v in report.verdicts:
        by_kind.setdefault(v.kind, []).append(v)
    key = base64.b64encode(signing.load_public(public_key)).decode() if public_key else None
    reviewed = reviews.read(state_dir, by_kind.get("review", []), key)
    approvals = _approvals(state_dir, by_kind.get("approval", []), key)
    runs: list[RunView] = []
    for v in by_kind.get("run", []):
        s = summarize(v, reviewed, [], rules)  # the ledger's problems: the cover's
        if not (s.started and period.holds(s.started)):
            continue
        if (runbook and s.runbook != runbook) or (ticket and s.ticket != ticket):
            continue
        plan = s.started_rec.get("plan_hash") if s.started_rec.get("plan_file") else None
        runs.append(
            RunView(
                s,
                s.outcome,  # the last transition (runner/execution/lifecycle.py), or "check"
                explained(v.events, derive(v.events).history),
                per_host(v.events),
                approvals.get(plan or "", []),
            )
        )
    runs.sort(key=lambda r: (r.summary.started or "", r.run_id))  # in the order they happened
    lists = [] if runbook or ticket else _checklists(by_kind.get("checklist", []), period)
    used_plans = {r.started.get("plan_hash") for r in runs}
    run_ids = {r.run_id for r in runs}
    in_scope = [  # a journal that does not hold is shown whatever the filters
        v
        for v in report.verdicts
        if not v.ok
        or (v.kind == "run" and v.run_id in run_ids)
        or (v.kind == "checklist" and any(c.verdict is v for c in lists))
        or (v.kind == "approval" and any(e.get("plan_hash") in used_plans for e in v.events))
        or (v.kind == "review" and any(e.get("reviewed_run") in run_ids for e in v.events))
    ]
    lp = ledger_path(state_dir)
    ledger = verify_run(lp, keep=True) if lp.exists() else None
    return Report(
        generated=now(),
        version=__version__,
        period=period,
        filters={k: v for k, v in (("runbook", runbook), ("ticket", ticket)) if v},
        key=_key_text(public_key, [*report.verdicts, *([ledger] if ledger else [])]),
        signers=str(allowed) if allowed else "",
        journals=in_scope,
        ledger=ledger,
        ledger_problems=report.ledger,
        runs=runs,
        checklists=lists,
        never_started=[]
        if runbook or ticket
        else never_started(
            period.since,
            period.until,
            {v.run_id for v in by_kind.get("checklist", [])},  # any instance, whatever its state
        ),
    )


def _approvals(
    state_dir: Path, verdicts: list[Verdict], key: str | None
) -> dict[str, list[Approval]]:
    out: dict[str, list[Approval]] = {}
    for v in verdicts:
        vouched = integrity.vouched(state_dir, state_dir / v.journal, v, key)
        for e in v.events if v.ok else []:
            if e["event"] != "plan.approved":
                continue
            a = Approval(
                e["ts"],
                str(e.get("plan_hash")),
                str(e.get("runbook")),
                identity.label(e),  # the person, and whether they signed it
                str(e.get("meaning", "")),
                str(e.get("note") or ""),
                e["seq"] in vouched,
            )
            out.setdefault(a.plan_hash, []).append(a)
    return out


def _checklists(verdicts: list[Verdict], period: Period) -> list[ChecklistView]:
    out = []
    for v in verdicts:
        if not v.ok:
            continue
        inst = checklist_state.derive(v.events)
        if not (
            any(period.holds(e["ts"]) for e in v.events)
            or overlaps(inst.period, inst.instance, period.since, period.until)
        ):
            continue
        current = (
            checklist.current_period(inst.period, checklist.now_local())
            if inst.period != "once"
            else ""
        )
        overdue = inst.completed is None and inst.period != "once" and inst.instance < current
        out.append(ChecklistView(inst, v, overdue))
    return out


def _key_text(public_key: str | None, verdicts: list[Verdict]) -> str:
    """The key the signatures were checked with: the one required, or those they carry (the
    runs' signature records and the ledger's signed entries)."""
    if public_key:
        return f"{signing.key_id(signing.load_public(public_key))} (required of every journal: {public_key})"
    seen = {str(e["key_id"]) for v in verdicts for e in v.events if e.get("key_id")}
    if not seen:
        return "none: nothing is signed (a hash chain alone does not prove who wrote a journal)"
    return f"{', '.join(sorted(seen))} (the keys the signatures carry; no key was required)"
