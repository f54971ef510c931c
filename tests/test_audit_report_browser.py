"""`runbook audit report` read in a real browser: a state dir the real CLI filled against the
demo target (audit_scenario.py), the report opened in Debian's headless Chromium, every part
checked through the DOM, a screenshot and a PDF printed."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path

import pytest
from audit_scenario import SECRET, UNSAFE, build_scenario, out, records
from browser import CHROMIUM, Node, chromium, dom
from demo_target import Demo
from people import People

from runner import __version__
from runner.audit import signing
from runner.cli import main

# --- reading the document as a browser does ------------------------------------------------------


def _rows(table: Node) -> list[Node]:
    return table.one("tbody").all("tr")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_report_in_chromium(
    demo: Demo,
    workdir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    people: People,
) -> None:
    assert main(["audit", "keygen", "--out", str(workdir / "key")]) == 0
    monkeypatch.setenv("RUNBOOK_SIGNING_KEY", str(workdir / "key"))
    monkeypatch.setenv("RUNBOOK_ALLOWED_SIGNERS", str(people.allowed))
    sc = build_scenario(demo, workdir, people)
    monkeypatch.delenv("RUNBOOK_SIGNING_KEY")
    monkeypatch.delenv("RUNBOOK_ALLOWED_SIGNERS")  # given to the report instead
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    page = tmp_path / "report.html"
    common = ["audit", "report", "--since", today, "--until", today]
    # every journal must be signed by this key (every command ran with it)
    common += ["--public-key", str(workdir / "key.pub"), "--allowed-signers", str(people.allowed)]
    assert main([*common, "-o", str(page)]) == 0
    doc = dom(page, tmp_path)
    text = doc.text
    runs = [
        sc.succeeded,
        sc.rolled_back,
        sc.resumed,
        sc.emergency_reviewed,
        sc.emergency_unreviewed,
        sc.planned,
        sc.noisy,
    ]
    # and whatever runs the checklist's automated items made (their evidence)
    every_run = sorted(p.stem for p in (workdir / "state" / "runs").glob("*.jsonl"))
    assert set(runs) <= set(every_run)

    # the cover: period, generation time, tool version, every journal's verdict, the key used
    assert doc.one(id="period").text == (
        f"{today}T00:00:00.000000Z to {today}T23:59:59.999999Z, UTC"
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z", doc.one(id="generated").text)
    assert doc.one(id="tool-version").text == f"runbook {__version__}"
    key_id = signing.key_id(signing.load_public(str(workdir / "key.pub")))
    assert doc.one(id="public-key").text.startswith(f"{key_id} (required of every journal")
    assert doc.one(id="verdict").text == "every journal in scope holds"
    assert doc.one(id="people").text == f"signatures checked against {people.allowed}"
    journals = {r.all("td")[1].text: r.attrs for r in _rows(doc.one(id="journals"))}
    for run_id in every_run:
        assert journals[f"runs/{run_id}.jsonl"]["data-status"] == "ok"
    kinds = sorted(a["data-kind"] for a in journals.values())
    assert kinds.count("checklist") == 2 and kinds.count("approval") == 1
    assert kinds.count("review") == 1 and kinds.count("ledger") == 1
    assert all(a["data-status"] == "ok" for a in journals.values())

    # the summary
    def summary(topic: str, item: str) -> Node:
        return doc.one("tr", data_topic=topic, data_item=item)

    def ids(row: Node) -> set[str]:
        return {a.text for a in row.all("a")}

    assert ids(summary("runs by final state", "rolled-back")) == {sc.rolled_back}
    assert ids(summary("runs by final state", "succeeded")) == set(every_run) - {sc.rolled_back}
    assert (
        summary("emergency changes", "incident-response").one(cls="detail").text
        == "reviewed by victor (unsigned)"
    )
    unreviewed = summary("emergency changes", "database-corruption")
    assert (
        unreviewed.one(cls="detail").text == "NOT REVIEWED" and "attention" in unreviewed.classes()
    )
    no_ticket = {sc.rolled_back, sc.emergency_reviewed, sc.emergency_unreviewed, sc.noisy}
    assert ids(summary("changes without a ticket", "normal or emergency")) == no_ticket
    assert (
        summary("failed or incomplete rollbacks", "rollback failed or never finished")
        .one(cls="count")
        .text
        == "0"
    )
    assert ids(summary("checklist periods", "completed")) == {
        "post-incident-review-INC-20261102-0900"
    }
    assert ids(summary("checklist periods", "overdue")) == {"daily-2026-11-02"}
    plans = summary("plans executed", "config-change")
    assert ids(plans) == {sc.planned}
    assert (
        plans.one(cls="detail").text
        == f"plan {sc.plan_hash}; approved by carol@example.com (signed)"
    )

    # the index links to every run, and every link lands on its run
    index = {r.attrs["data-run"]: r for r in _rows(doc.one(id="run-index"))}
    assert sorted(index) == every_run
    starts = [r.one("time").attrs["datetime"] for r in _rows(doc.one(id="run-index"))]
    assert starts == sorted(starts)  # in the order they happened
    for run_id, row in index.items():
        assert row.one("a").attrs["href"] == f"#run-{run_id}"
        assert (
            doc.one("section", id=f"run-{run_id}").attrs["data-state"]
            == index[run_id].one(cls="state").text
        )

    def section(run_id: str) -> Node:
        return doc.one("section", id=f"run-{run_id}")

    def moves(run_id: str) -> list[tuple[str, str, str]]:
        table = section(run_id).one("table", cls="transitions")
        return [
            (r.attrs["data-state"], r.one(cls="who").text, r.one(cls="why").text)
            for r in _rows(table)
        ]

    # final state and every transition, with who and why
    assert section(sc.succeeded).one(cls="final-state").text == "succeeded"
    # (the states and who are runner/execution/lifecycle.py's; the report adds what the record says beside)
    assert [m[:2] for m in moves(sc.succeeded)] == [("running", "olga"), ("succeeded", "olga")]
    assert "ticket CHG-1001" in moves(sc.succeeded)[0][2]
    assert [m[0] for m in moves(sc.rolled_back)] == ["running", "rolling-back", "rolled-back"]
    assert "no ticket" in moves(sc.rolled_back)[0][2]
    assert "step 'validate': exit 1, expected 0" in moves(sc.rolled_back)[-1][2]
    resumed = moves(sc.resumed)
    assert [m[0] for m in resumed] == ["running", "waiting", "running", "succeeded"]
    assert "at reconfigure on local" in resumed[1][2]
    assert "confirmed: reconfigure on local by rita (unsigned)" in resumed[2][2]
    assert "saved plan " + sc.plan_hash[:16] in moves(sc.planned)[0][2]
    assert section(sc.resumed).one(cls="final-state").text == "succeeded"
    # audit show and the exports name them too (they were empty rows)
    shown = out(capsys, "audit", "show", sc.resumed)
    assert "resumed by " in shown
    assert "manual step confirmed: reconfigure on local by rita (unsigned)" in shown
    assert "[local] manual step reconfigure waits for a person" in shown

    # steps per host: command, exit code, output digest and head; failures and rollbacks marked
    events = {e["seq"]: e for e in records(workdir / "state" / "runs" / f"{sc.rolled_back}.jsonl")}
    steps = section(sc.rolled_back).one("table", cls="steps", data_host="local")
    failed = steps.one("tr", data_step="validate", data_kind="step")
    assert "fail" in failed.classes() and "FAILED" in failed.text
    assert failed.one(cls="exit").text == "1"
    applied = steps.one("tr", data_step="apply", data_kind="step")
    rec = next(e for e in events.values() if e["event"] == "step.finished" and e["step"] == "apply")
    assert applied.one("pre", cls="cmd").text == rec["command"]
    assert rec["stdout"]["sha256"][:16] in applied.text and "was: COPY_RATIO=" in applied.text
    undo = steps.one("tr", data_step="apply", data_kind="rollback")
    assert "rollback" in undo.classes() and "fail" not in undo.classes()
    assert undo.one(cls="exit").text == "0"
    # a step skipped by its `when:` is a skip, not a failure
    skips = (
        section(sc.emergency_unreviewed).one("table", cls="steps").all("tr", data_step="restore")
    )
    assert [r.attrs["data-kind"] for r in skips] == ["skipped"] and "fail" not in skips[0].classes()

    # the plan and its approval; the reviews
    planned = section(sc.planned)
    assert planned.one(cls="plan-hash").text == sc.plan_hash
    (approval,) = _rows(planned.one("table", cls="approvals"))
    assert [td.text for td in approval.all("td")][1:] == [
        "carol@example.com (signed)",
        "approved",
        "CAB-7",
        "yes",
    ]
    (review,) = _rows(section(sc.emergency_reviewed).one("table", cls="reviews"))
    assert [td.text for td in review.all("td")][1:] == [
        "victor (unsigned)",
        "reviewed",
        "CAB ok",
        "yes",
    ]
    (missing,) = _rows(section(sc.emergency_unreviewed).one("table", cls="reviews"))
    assert "NOT REVIEWED" in missing.text and "fail" in missing.classes()

    # checklists: items, evidence, sign-offs (name, time, meaning), skips with reasons
    daily = doc.one("section", id="checklist-daily-2026-11-02")
    assert daily.one(cls="instance-state").text == "overdue"
    log_review = daily.one("tr", data_item="log-review")
    assert (
        log_review.attrs["data-state"] == "done"
        and "exit_code: 0" in log_review.one(cls="evidence").text
    )
    (sig,) = log_review.all(cls="signoff")
    assert (
        sig.one(cls="by").text == "alice@example.com (signed)"
        and sig.one(cls="meaning").text == "reviewed"
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z", sig.one("time").text)
    scan = daily.one("tr", data_item="security-scan")
    assert scan.attrs["data-state"] == "skipped"
    assert scan.one(cls="skip-reason").text == "skipped: scanner down, INC-123"
    pir = doc.one("section", id="checklist-post-incident-review-INC-20261102-0900")
    assert pir.one(cls="completed-by").text == "bob (unsigned)"
    rca = pir.one("tr", data_item="root-cause-analysis")
    assert [(s.one(cls="by").text, s.one(cls="meaning").text) for s in rca.all(cls="signoff")] == [
        ("alice (unsigned)", "reviewed"),
        ("bob (unsigned)", "reviewed"),
    ]  # the first performs it, a second person reviews

    # secrets masked, escape sequences neutralised, timestamps never wrapped
    noisy = section(sc.noisy)
    assert "token=***" in noisy.one("tr", data_step="paint").one("pre", cls="cmd").text
    assert SECRET not in page.read_text() and SECRET not in text
    assert not UNSAFE.search(text)
    assert r"red:\x1b[31mRED\x1b[0m title:\x1b]0;owned\x07" in noisy.text
    assert r"rlo:\u202ecod.exe" in noisy.text
    css = doc.one("style").text
    assert re.search(r"\.ts\b[^{]*\{[^}]*white-space: nowrap", css)
    assert re.search(r"section\.run[^{]*\{[^}]*break-before: page", css)
    assert all("ts" in t.classes() for t in doc.all("time"))

    shot = tmp_path / "report.png"
    chromium(page, tmp_path, "--window-size=1280,2200", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # PDF: Chromium paginates it with the print styles, a page (at least) per run
    pdf = tmp_path / "report.pdf"
    assert main([*common, "--format", "pdf", "-o", str(pdf)]) == 0
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page\b", data)) >= len(every_run) + 2 + 2

    # CSV and JSON: the same rows as the summary and the index
    capsys.readouterr()
    assert main([*common, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in report["index"]] == [
        r.attrs["data-run"] for r in _rows(doc.one(id="run-index"))
    ]
    html_summary = [
        (r.attrs["data-topic"], r.attrs["data-item"], r.one(cls="count").text)
        for r in _rows(doc.one("section", id="summary").one("table"))
    ]
    assert [(s["topic"], s["item"], str(s["count"])) for s in report["summary"]] == html_summary
    assert main([*common, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [
        (r["topic"], r["item"], r["count"]) for r in rows if r["section"] == "summary"
    ] == html_summary
    assert [r["run_id"] for r in rows if r["section"] == "run"] == [
        r["run_id"] for r in report["index"]
    ]
    assert [r["final_state"] for r in rows if r["section"] == "run"] == [
        r["final_state"] for r in report["index"]
    ]
