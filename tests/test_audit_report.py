"""`runbook audit report`: the auditor's document, built from a state dir the real CLI filled
against the demo target, then read in a real browser (Debian's headless Chromium)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from audit_scenario import NOISY, SECRET, build_scenario, run_of
from browser import CHROMIUM, Node, chromium, dom
from demo_target import REPO, Demo
from people import People

from runner import __version__, signing
from runner.audit import Journal
from runner.cli import main

# --- reading the document as a browser does ------------------------------------------------------

UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


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
    assert doc.one(id="period").text == f"{today} to {today}, UTC"
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
    # (the states and who are runner/lifecycle.py's; the report adds what the record says beside)
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
    shown = _out(capsys, "audit", "show", sc.resumed)
    assert "resumed by " in shown
    assert "manual step confirmed: reconfigure on local by rita (unsigned)" in shown
    assert "[local] manual step reconfigure waits for a person" in shown

    # steps per host: command, exit code, output digest and head; failures and rollbacks marked
    events = {e["seq"]: e for e in _records(workdir / "state" / "runs" / f"{sc.rolled_back}.jsonl")}
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


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- without the demo: escapes in every view, the period and filters, a journal that does not hold --


@pytest.fixture
def noisy_runs(workdir: Path) -> dict[str, str]:
    """Three small local runs: one printing escapes (ticket T-1), two plain ones."""
    state = workdir / "state"
    (workdir / "runbooks" / "noisy.yaml").write_text(NOISY.replace("targets: local\n", ""))
    (workdir / "runbooks" / "plain.yaml").write_text(
        "runbook: plain\nsteps: [{id: a, run: echo a}]\n"
    )
    return {
        "noisy": run_of(state, ["run", "noisy", "-p", f"token={SECRET}", "--ticket", "T-1"], 0),
        "plain": run_of(state, ["run", "plain", "--ticket", "T-2"], 0),
        "plain2": run_of(state, ["run", "plain"], 0),
    }


def _out(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == 0, args
    return capsys.readouterr().out


def test_escape_sequences_are_neutralised_in_show_exports_and_report(
    noisy_runs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = noisy_runs["noisy"]
    views = {
        "show": _out(capsys, "audit", "show", run_id),
        **{
            f"export {f}": _out(capsys, "audit", "export", run_id, "--format", f)
            for f in ("md", "html")
        },
        **{f"report {f}": _out(capsys, "audit", "report", "--format", f) for f in ("md", "html")},
    }
    for name, text in views.items():
        assert not UNSAFE.search(text), name
        assert SECRET not in text, name
        assert r"\x1b[31mRED" in text, name  # the auditor still sees what was there
        assert r"\u202ecod.exe" in text, name
    for args in (["export", run_id], ["report"]):  # no output columns; the rows end in CRLF
        text = _out(capsys, "audit", *args, "--format", "csv").replace("\r\n", "\n")
        assert not UNSAFE.search(text) and SECRET not in text
    report = _out(capsys, "audit", "report", "--format", "json")
    assert not UNSAFE.search(report) and SECRET not in report
    text = _out(capsys, "audit", "export", run_id, "--format", "json")
    assert not UNSAFE.search(text) and SECRET not in text
    assert "\\u001b[31mRED" in text and "\\u202ecod.exe" in text
    # what people typed is recorded as typed, and shown as text too
    daily = ["checklists/daily.yaml", "--period", "2026-11-02"]
    (Path("checklists")).mkdir()
    Path(daily[0]).write_text((REPO / daily[0]).read_text())
    assert main(["checklist", "start", *daily]) == 0
    assert (
        main(
            [
                "checklist",
                "skip",
                *daily[:1],
                "security-scan",
                *daily[1:],
                "--by",
                "mallory",
                "--reason",
                "down\x1b[2J\x1b]0;owned\x07",
            ]
        )
        == 0
    )
    for fmt in ("text", "md"):
        text = _out(capsys, "checklist", "status", *daily, "--format", fmt)
        assert not UNSAFE.search(text) and r"down\x1b[2J\x1b]0;owned\x07" in text, fmt
    exported = json.loads(_out(capsys, "audit", "export", run_id, "--format", "json"))
    recorded = _records(next((Path("state") / "runs").glob(f"{run_id}.jsonl")))
    assert exported[0]["events"] == recorded


def test_report_period_and_filters(
    noisy_runs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    def index(*args: str) -> list[str]:
        doc = json.loads(_out(capsys, "audit", "report", "--format", "json", *args))
        return [r["run_id"] for r in doc["index"]]

    everything = list(noisy_runs.values())  # in the order they ran
    assert index() == everything
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    assert index("--since", today, "--until", today) == everything
    assert index("--until", "2000-01-01") == []
    empty = json.loads(_out(capsys, "audit", "report", "--format", "json", "--until", "2000-01-01"))
    assert empty["report"]["verdict"] == "no journal in scope"  # not "every journal holds"
    assert empty["report"]["period"] == "the first record (-) to 2000-01-01, UTC"
    assert index("--since", "2999-01-01T00:00:00Z") == []
    assert index("--ticket", "T-1") == [noisy_runs["noisy"]]
    assert index("--runbook", "plain") == [noisy_runs["plain"], noisy_runs["plain2"]]
    capsys.readouterr()
    assert main(["audit", "report", "--since", "last tuesday"]) == 2
    assert "expected a date" in capsys.readouterr().err
    assert main(["audit", "report", "--format", "pdf"]) == 2  # a PDF is a file: -o needed


def test_report_says_when_a_journal_does_not_hold(
    noisy_runs: dict[str, str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workdir / "state" / "runs" / f"{noisy_runs['plain']}.jsonl"
    path.write_text(path.read_text().replace('"echo a', '"echo b'))
    out = workdir / "report.html"
    assert main(["audit", "report", "--runbook", "noisy", "-o", str(out)]) == 4
    assert "SOME JOURNALS DO NOT HOLD" in capsys.readouterr().out
    page = out.read_text()
    assert "SOME JOURNALS DO NOT HOLD" in page
    # the edited run is named on the cover although --runbook leaves it out of the index
    assert f"{noisy_runs['plain']}: FAILED at record" in page
    doc = json.loads(_out_code(capsys, 4, "audit", "report", "--format", "json"))
    assert doc["report"]["verified"] is False
    (bad,) = [j for j in doc["report"]["journals"] if j["status"] != "ok"]
    assert bad["journal"] == f"runs/{noisy_runs['plain']}.jsonl"


def _out_code(capsys: pytest.CaptureFixture[str], code: int, *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == code, args
    return capsys.readouterr().out


def test_report_shows_the_step_a_killed_runner_never_finished(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "runbooks" / "dies.yaml").write_text(
        "runbook: dies\nchange: normal\nsteps:\n"
        "  - {id: fine, run: echo fine}\n"
        "  - {id: fatal, run: 'kill -9 $PPID; sleep 5'}\n"  # the runner itself is SIGKILLed
    )
    done = subprocess.run(
        [sys.executable, "-m", "runner", "run", "dies", "--ticket", "T-9"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == -9
    report = json.loads(_out(capsys, "audit", "report", "--format", "json"))
    (row,) = report["index"]
    assert row["final_state"] == "running"  # it never reached another state
    (stuck,) = [s for s in report["summary"] if s["item"] == "running"]
    assert stuck["attention"] and stuck["ids"] == [row["run_id"]]
    md = _out(capsys, "audit", "report", "--format", "md")
    assert "fatal` started; no result was recorded (the runner stopped during it)" in md


def test_a_review_appended_by_hand_is_marked_not_vouched(
    noisy_runs: dict[str, str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = noisy_runs["plain"]
    assert main(["audit", "review", run_id, "--by", "victor"]) == 0
    # a well-formed record, chained correctly, but appended without a command's seal
    path = workdir / "state" / "reviews" / f"review-{run_id}.jsonl"
    forged = Journal(path, path.stem)
    forged.append("run.reviewed", {"reviewed_run": run_id, "by": "mallory", "meaning": "reviewed"})
    forged.close()
    report = json.loads(_out(capsys, "audit", "report", "--format", "json"))
    (row,) = [r for r in report["index"] if r["run_id"] == run_id]
    assert (
        row["reviewed_by"]
        == "victor (unsigned), mallory (unsigned) (NOT vouched for by the ledger)"
    )
