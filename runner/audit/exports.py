"""A run's summary as a document to pass on: md, html, json or csv (`audit export`).

Every format neutralises control characters and bidi overrides (termsafe.py); the journal never
held a secret, so no export can contain one.
"""

from __future__ import annotations

import csv
import html
import io
import json

from runner.audit.report import RunSummary, event_line, printable, timeline
from runner.termsafe import json_safe, neutralise_all


def export(summaries: list[RunSummary], fmt: str) -> str:
    """Every format neutralises control characters and bidi overrides (termsafe.py): an export
    is read in a terminal too (`cat`, `less -R`)."""
    text = _export(summaries, fmt)
    if fmt == "json":  # as \u escapes: still valid JSON that decodes to the recorded values
        return json_safe(text)
    if fmt == "csv":  # each cell was neutralised: the rows' CRLF are the format's own
        return text
    return printable(text)


def _export(summaries: list[RunSummary], fmt: str) -> str:
    if fmt == "json":
        return (
            json.dumps(
                [{**s.row(), "events": s.events} for s in summaries], indent=2, ensure_ascii=False
            )
            + "\n"
        )
    if fmt == "csv":
        buf = io.StringIO()
        cols = [
            "run_id",
            "seq",
            "ts",
            "event",
            "host",
            "step",
            "command",
            "exit",
            "ok",
            "reason",
            "outcome",
            "state",  # a run.state record: the state entered, and by whom (lifecycle.py)
            "by",
            "verified",
        ]
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for s in summaries:
            # a run with no records (its log deleted) still gets its row: its verdict
            for e in s.events or [{"run_id": s.run_id, "outcome": s.outcome}]:
                w.writerow(
                    neutralise_all({**{k: e.get(k, "") for k in cols}, "verified": s.verified})
                )
        return buf.getvalue()
    if fmt == "md":
        parts = []
        for s in summaries:
            parts.append(
                f"# Run {s.run_id}\n\n**Audit verification: {s.verified}**\n\n```\n{timeline(s)}\n```\n"
            )
        return "\n".join(parts)
    return _html(summaries)


_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;width:100%;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}pre{white-space:pre-wrap;margin:0}td:first-child{white-space:nowrap}
.ok{color:#176117}.bad{color:#a11}.fail td{background:#fde5e5}h1{font-size:1.4em}@media print{body{margin:0}}"""


def _html(summaries: list[RunSummary]) -> str:
    e_ = html.escape
    body = []
    for s in summaries:
        st = s.started_rec
        cls = "ok" if s.holds else "bad"
        head = [
            ("runbook", f"{s.runbook} (sha256 {st.get('runbook_sha256', '')})"),
            ("operator", s.operator),
            ("ticket", s.ticket or "-"),
            ("change", st.get("change") or "-"),
            ("outcome", s.outcome),
            (
                "history",
                "\n".join(
                    f"{t.ts} {t.state} by {t.by}" + (f": {t.reason}" if t.reason else "")
                    for t in s.lifecycle.history
                ),
            ),
            ("params", json.dumps(st.get("params", {}), sort_keys=True)),
            ("plan hash", st.get("plan_hash") or "-"),
        ]
        rows = "".join(
            f"<tr><th>{e_(k)}</th><td><pre>{e_(str(v))}</pre></td></tr>" for k, v in head
        )
        events = "".join(
            f"<tr{' class=fail' if ev.get('ok') is False else ''}><td>{e_(ev['ts'])}</td><td>{e_(ev['event'])}</td><td>{e_(str(ev.get('host', '')))}</td>"
            f"<td>{e_(str(ev.get('step', '')))}</td><td><pre>{e_(event_line(ev) or '')}</pre></td></tr>"
            for ev in s.events
        )
        body.append(
            f'<section><h1>Run {e_(s.run_id)}</h1><p class="{cls}"><strong>Audit verification: {e_(s.verified)}</strong></p>'
            f"<table>{rows}</table><table><tr><th>time (UTC)</th><th>event</th><th>host</th><th>step</th><th>detail</th></tr>{events}</table></section>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>runbook audit report</title>'
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
