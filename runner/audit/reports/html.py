"""The report as one self-contained HTML file: inline CSS, no script, no external asset, so it
opens offline years later and prints (or "Save as PDF") cleanly: a page per run, timestamps that
never wrap. Jinja2 escapes every value (autoescape), after termsafe has made each one visible
text (`finalize`), so neither markup nor escape sequences from a host's output get through."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from runner.audit import identity
from runner.audit.reports import summary
from runner.audit.reports.collect import Report
from runner.termsafe import neutralise, neutralise_all

TEMPLATES = Path(__file__).parent / "templates"


def _finalize(value: Any) -> Any:
    from markupsafe import Markup

    if isinstance(value, Markup):  # our own markup (a macro's output, the stylesheet)
        return value
    return neutralise(value) if isinstance(value, str) else value


def _when(ts: str | None) -> str:
    """2026-11-29T17:48:56.028681Z -> 2026-11-29 17:48:56.028Z (milliseconds are enough to
    read; the full value is the element's datetime attribute)."""
    if not ts:
        return ""
    return ts.replace("T", " ")[:23] + ("Z" if ts.endswith("Z") else "")


def _evidence(value: Any) -> str:
    if not isinstance(value, dict):
        return str(value)
    lines = []
    for k, v in value.items():
        text = v if isinstance(v, str) else json.dumps(neutralise_all(v), sort_keys=True)
        lines.append(f"{k}: {text}")
    return "\n".join(lines)


def render(rep: Report) -> str:
    from jinja2 import Environment, FileSystemLoader
    from markupsafe import Markup

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=_when,
        short=lambda h: str(h or "")[:16],
        css=lambda s: re.sub(r"[^a-z0-9-]+", "-", str(s).lower()),
        json=lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False),
        evidence=_evidence,
        signer=identity.label,  # `alice@example.com (signed)`, `bob (unsigned)`
    )
    return env.get_template("report.html.j2").render(
        css=Markup((TEMPLATES / "report.css").read_text(encoding="utf-8")),
        cover=summary.cover(rep),
        summary=summary.summary_rows(rep),
        index=summary.index_rows(rep),
        checklist_index=summary.checklist_rows(rep),
        runs=rep.runs,
        checklists=rep.checklists,
    )
