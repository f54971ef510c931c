"""The report as Markdown: the same cover, summary, index, runs and checklists as the HTML, for
reviewing in a merge request or a wiki. Every value passes through termsafe."""

from __future__ import annotations

import json
from typing import Any

from runner.audit.identity import label
from runner.audit.reports import summary
from runner.audit.reports.collect import Report, RunView
from runner.termsafe import neutralise


def _c(value: Any) -> str:
    """A table cell: visible text, one line, no column break."""
    return neutralise(str("" if value is None else value)).replace("|", "\\|").replace("\n", " ")


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_c(v) for v in row) + " |" for row in rows]
    return [*out, ""]


def _block(text: str) -> list[str]:
    body = neutralise(text.rstrip("\n"))
    fence = "````" if "```" in body else "```"
    return [fence, body, fence]


def render(rep: Report) -> str:
    cov = summary.cover(rep)
    out = ["# Audit report", ""]
    out += _table(
        ["", ""],
        [
            ["Period", cov["period"]],
            ["Only", "; ".join(f"{k} {v}" for k, v in rep.filters.items()) or "-"],
            ["Generated", cov["generated"]],
            ["Tool", f"runbook {cov['tool_version']}"],
            ["Public key", cov["public_key"]],
            ["People's keys", cov["people"]],
            ["People's keys", cov["people"]],
            [
                "Verification",
                rep.verdict,
            ],
        ],
    )
    out += _table(
        ["kind", "journal", "verdict"],
        [[j["kind"], j["journal"], j["verdict"]] for j in cov["journals"]],
    )
    out += [f"- LEDGER: {_c(p)}" for p in rep.ledger_problems]
    out += ["## Summary", ""]
    out += _table(
        ["topic", "item", "count", "runs / instances", "detail"],
        [
            [s["topic"], s["item"], s["count"], ", ".join(s["ids"]), s["detail"]]
            for s in summary.summary_rows(rep)
        ],
    )
    out += ["## Index", ""]
    out += _table(
        [
            "run",
            "runbook",
            "operator",
            "started",
            "final state",
            "ticket",
            "change",
            "reviewed by",
            "approved by",
            "audit",
        ],
        [
            [
                f"[{i['run_id']}]({i['link']})",
                i["runbook"],
                i["operator"],
                i["started"],
                i["final_state"],
                i["ticket"],
                i["change"],
                i["reviewed_by"],
                i["approved_by"],
                i["verified"],
            ]
            for i in summary.index_rows(rep)
        ],
    )
    for r in rep.runs:
        out += _run(r)
    for c in rep.checklists:
        i = c.instance
        state = c.state
        out += [
            f'<a id="checklist-{c.verdict.run_id}"></a>',
            f"## Checklist {_c(i.title)}: {_c(i.instance)} ({state})",
            "",
        ]
        out += _table(
            ["item", "state", "performed", "evidence", "sign-offs", "skip reason"],
            [
                [
                    it.id,
                    it.state,
                    f"{it.performer or ''} {it.when or ''}",
                    json.dumps(it.evidence, sort_keys=True) if it.evidence else "",
                    "; ".join(f"{label(s)} {s['at']} {s['meaning']}" for s in it.signatures),
                    it.reason if it.state == "skipped" else "",
                ]
                for it in i.items.values()
            ],
        )
    return "\n".join(out) + "\n"


def _run(r: RunView) -> list[str]:
    st, s = r.started, r.summary
    out = [f'<a id="{summary.anchor(r.run_id)}"></a>', f"## Run {r.run_id}: {r.state}", ""]
    out += _table(
        ["", ""],
        [
            ["runbook", f"{s.runbook} (sha256 {st.get('runbook_sha256')})"],
            ["operator", s.operator],
            [
                "ticket / change",
                f"{s.ticket or 'no ticket'} / {st.get('change') or 'unclassified'}",
            ],
            ["params", json.dumps(st.get("params", {}), sort_keys=True)],
            ["audit", s.verified],
        ],
    )
    out += ["### Lifecycle", ""]
    out += _table(
        ["time (UTC)", "state", "who", "why"],
        [[t.ts, t.state, t.by, why] for t, why in r.transitions],
    )
    if st.get("plan_file"):
        out += [f"### Plan {_c(st.get('plan_hash'))}", ""]
        out += _table(
            ["time (UTC)", "by", "meaning", "note", "sealed"],
            [[a.ts, a.by, a.meaning, a.note, "yes" if a.vouched else "NO"] for a in r.approvals]
            or [["-", "NO APPROVAL", "", "", ""]],
        )
    if st.get("change") == "emergency" or s.reviews:
        out += ["### Retroactive review", ""]
        out += _table(
            ["time (UTC)", "by", "note", "counts"],
            [[v["ts"], label(v), v.get("note"), v.get("why_not") or "yes"] for v in s.reviews]
            or [["-", "NOT REVIEWED", "", ""]],
        )
    for host, rows in r.hosts.items():
        out += [f"### Steps on {_c(host)}", ""]
        for row in rows:
            flag = " **FAILED**" if row.ok is False else ""
            exit_ = "" if row.exit is None else f" exit {row.exit}"
            out.append(
                f"- {row.ts} {row.kind} `{_c(row.step)}`{flag}{exit_} {_c(row.reason)}".rstrip()
            )
            if row.command:
                out += ["", *_block(row.command)]
            for name, o in (("stdout", row.stdout), ("stderr", row.stderr)):
                if o.get("bytes"):
                    out += [
                        "",
                        f"  {name}: {o['bytes']} bytes, sha256 {o.get('sha256')}",
                        *_block(str(o.get("head", ""))),
                    ]
        out.append("")
    return out
