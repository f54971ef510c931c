"""The report's summary and index as rows: the HTML tables, and the CSV and JSON exports, are
these same rows (an auditor who samples in a spreadsheet sees what the document says)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from runner.audit import identity
from runner.audit.chain import Verdict
from runner.audit.reports.collect import Report, RunView
from runner.termsafe import json_text, neutralise_all

# The change types that need a ticket of their own: pre-approved routine changes (ITIL
# "standard") do not, and a run of a runbook without `change:` is not declared a change.
NEEDS_TICKET = ("normal", "emergency")


def anchor(run_id: str) -> str:
    return f"run-{run_id}"


def approved_by(r: RunView) -> str:
    return ", ".join(
        f"{a.by}{'' if a.vouched else ' (NOT vouched for by the ledger)'}" for a in r.approvals
    )


def reviewed_by(r: RunView) -> str:
    return ", ".join(
        identity.label(e) + (f" (DOES NOT COUNT: {e['why_not']})" if e.get("why_not") else "")
        for e in r.summary.reviews
    )


def index_rows(rep: Report) -> list[dict[str, Any]]:
    rows = []
    for r in rep.runs:
        st = r.started
        fin = r.transitions[-1][0].ts if r.transitions else ""
        rows.append(
            {
                "run_id": r.run_id,
                "runbook": r.summary.runbook,
                "operator": r.summary.operator,
                "started": r.summary.started,
                "last_transition": fin,
                "final_state": r.state,
                "ticket": r.summary.ticket or "",
                "change": st.get("change") or "",
                "reviewed_by": reviewed_by(r),
                "plan_hash": st.get("plan_hash") if st.get("plan_file") else "",
                "approved_by": approved_by(r),
                "verified": r.summary.verified,
                "link": "#" + anchor(r.run_id),
            }
        )
    return rows


def checklist_rows(rep: Report) -> list[dict[str, Any]]:
    return [
        {
            "checklist": c.instance.checklist,
            "instance": c.instance.instance,
            "title": c.instance.title,
            "state": c.state,
            "completed_by": identity.label(c.instance.completed) if c.instance.completed else "",
            "pending_required": ", ".join(c.instance.pending_required),
            "verified": "verified" if c.verdict.ok else c.verdict.line(),
            "link": f"#checklist-{c.verdict.run_id}",
        }
        for c in rep.checklists
    ]


def _row(
    topic: str, item: str, runs: list[str], detail: str = "", flag: bool = False
) -> dict[str, Any]:
    return {
        "topic": topic,
        "item": item,
        "count": len(runs),
        "ids": runs,
        "detail": detail,
        "attention": flag,
    }


def _per_run(
    topic: str, runs: list[RunView], detail: Callable[[RunView], tuple[str, bool]]
) -> list[dict[str, Any]]:
    """A row per run: its runbook, its id, and (detail, needs attention)."""
    return [_row(topic, str(r.summary.runbook), [r.run_id], *detail(r)) for r in runs]


def _review_detail(r: RunView) -> tuple[str, bool]:
    who = reviewed_by(r)
    counted = any(e.get("counts") for e in r.summary.reviews)
    return (f"reviewed by {who}", not counted) if who else ("NOT REVIEWED", True)


def _approval_detail(r: RunView) -> tuple[str, bool]:
    who = approved_by(r)
    plan = f"plan {r.started.get('plan_hash')}"
    return (f"{plan}; approved by {who}", False) if who else (f"{plan}; NO APPROVAL", True)


def summary_rows(rep: Report) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    states: dict[str, list[str]] = {}
    for r in rep.runs:
        states.setdefault(r.state, []).append(r.run_id)
    bad_states = ("failed", "rollback-failed", "rolling-back", "interrupted", "aborted", "running")
    for state, ids in sorted(states.items()):
        rows.append(_row("runs by final state", state, ids, flag=state in bad_states))
    emergency = [r for r in rep.runs if r.started.get("change") == "emergency"]
    rows += _per_run("emergency changes", emergency, _review_detail)
    no_ticket = [
        r.run_id
        for r in rep.runs
        if not r.summary.ticket and r.started.get("change") in NEEDS_TICKET and r.state != "check"
    ]
    rows.append(
        _row(
            "changes without a ticket",
            "normal or emergency",
            no_ticket,
            flag=bool(no_ticket),
        )
    )
    bad_rb = [r.run_id for r in rep.runs if r.failed_rollback]
    rows.append(
        _row(
            "failed or incomplete rollbacks",
            "rollback failed or never finished",
            bad_rb,
            flag=bool(bad_rb),
        )
    )
    for label, pick in (
        ("completed", lambda c: c.instance.completed is not None),
        ("overdue", lambda c: c.overdue),
        ("open", lambda c: c.instance.completed is None and not c.overdue),
    ):
        ids = [c.verdict.run_id for c in rep.checklists if pick(c)]
        rows.append(_row("checklist periods", label, ids, flag=label == "overdue" and bool(ids)))
    rows.append(
        _row("checklist periods", "never started", rep.never_started, flag=bool(rep.never_started))
    )
    planned = [r for r in rep.runs if r.started.get("plan_file")]
    rows += _per_run("plans executed", planned, _approval_detail)
    return rows


def cover(rep: Report) -> dict[str, Any]:
    return {
        "period": rep.period_text,
        "filters": rep.filters,
        "generated": rep.generated,
        "tool_version": rep.version,
        "public_key": rep.key,
        "people": f"signatures checked against {rep.signers}"
        if rep.signers
        else "no allowed-signers file: signatures by people are not checked",
        "verified": rep.ok,
        "verdict": rep.verdict,
        "journals": [
            {"kind": v.kind, "journal": v.journal, "status": v.status, "verdict": _verdict_line(v)}
            for v in rep.journals
        ]
        + (
            [
                {
                    "kind": "ledger",
                    "journal": "ledger.jsonl",
                    "status": rep.ledger.status,
                    "verdict": _ledger_line(rep.ledger),
                }
            ]
            if rep.ledger
            else []
        ),
        "ledger_problems": rep.ledger_problems,
    }


def _verdict_line(v: Verdict) -> str:
    """What holds, and who signed it: whether a run is finished is its final state's business
    (the index), not the verdict's."""
    if v.status != "ok":
        return v.line()
    keys = sorted({str(e["key_id"]) for e in v.events if e["event"] == "run.signature"})
    signed = f", signed by {', '.join(keys)}" if keys else (", unsigned" if v.kind == "run" else "")
    return f"ok, {v.records} records{signed}" + (f" ({v.reason})" if v.reason else "")


def _ledger_line(v: Verdict) -> str:
    """The ledger never closes like a run does: its verdict without "open (no run.finished)"."""
    return f"ledger: ok, {v.records} records" if v.status == "ok" else v.line()


def as_json(rep: Report) -> str:
    doc = {
        "report": cover(rep),
        "summary": summary_rows(rep),
        "index": index_rows(rep),
        "checklists": checklist_rows(rep),
    }
    return json_text(doc, indent=2) + "\n"


def as_csv(rep: Report) -> str:
    """One table: `section` says which (summary, run, checklist); the other columns are the
    union of the three kinds of row, so it filters and sorts in a spreadsheet."""
    sections = [
        ("summary", summary_rows(rep)),
        ("run", index_rows(rep)),
        ("checklist", checklist_rows(rep)),
    ]
    cols = ["section"]
    for _, rows in sections:
        for row in rows:
            cols += [k for k in row if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for name, rows in sections:
        for row in rows:
            flat = {k: " ".join(v) if isinstance(v, list) else v for k, v in row.items()}
            w.writerow({k: _cell(v) for k, v in neutralise_all({"section": name, **flat}).items()})
    return buf.getvalue()


def _cell(value: Any) -> Any:
    """A spreadsheet runs a cell that starts with = + - @ as a formula: a recorded value (a
    ticket, a name) never gets to; the quote shows as text, as spreadsheets intend."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value
