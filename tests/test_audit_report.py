"""`runbook audit report` without the demo target: escapes neutralised in every view, the
period and filters, journals that do not hold, a step a killed runner never finished, a review
the ledger does not vouch for. (In a browser, with every kind of evidence: test_audit_report_browser.py.)"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from audit_scenario import NOISY, SECRET, UNSAFE, out, out_code, records, run_of
from demo_target import REPO

from runner.audit.journal import Journal
from runner.cli import main

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


def test_escape_sequences_are_neutralised_in_show_exports_and_report(
    noisy_runs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = noisy_runs["noisy"]
    views = {
        "show": out(capsys, "audit", "show", run_id),
        **{
            f"export {f}": out(capsys, "audit", "export", run_id, "--format", f)
            for f in ("md", "html")
        },
        **{f"report {f}": out(capsys, "audit", "report", "--format", f) for f in ("md", "html")},
    }
    for name, text in views.items():
        assert not UNSAFE.search(text), name
        assert SECRET not in text, name
        assert r"\x1b[31mRED" in text, name  # the auditor still sees what was there
        assert r"\u202ecod.exe" in text, name
    exported_csv = out(capsys, "audit", "export", run_id, "--format", "csv")
    rows = list(csv.reader(io.StringIO(exported_csv)))  # the format's own CRLF left alone
    assert rows[0][-1] == "verified" and {r[-1] for r in rows[1:]} == {"verified"}
    for args in (["export", run_id], ["report"]):  # no output columns; the rows end in CRLF
        text = out(capsys, "audit", *args, "--format", "csv").replace("\r\n", "\n")
        assert not UNSAFE.search(text) and SECRET not in text
    report = out(capsys, "audit", "report", "--format", "json")
    assert not UNSAFE.search(report) and SECRET not in report
    text = out(capsys, "audit", "export", run_id, "--format", "json")
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
        text = out(capsys, "checklist", "status", *daily, "--format", fmt)
        assert not UNSAFE.search(text) and r"down\x1b[2J\x1b]0;owned\x07" in text, fmt
    exported = json.loads(out(capsys, "audit", "export", run_id, "--format", "json"))
    recorded = records(next((Path("state") / "runs").glob(f"{run_id}.jsonl")))
    assert exported[0]["events"] == recorded


def test_report_period_and_filters(
    noisy_runs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    def index(*args: str) -> list[str]:
        doc = json.loads(out(capsys, "audit", "report", "--format", "json", *args))
        return [r["run_id"] for r in doc["index"]]

    everything = list(noisy_runs.values())  # in the order they ran
    assert index() == everything
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    assert index("--since", today, "--until", today) == everything
    assert index("--until", "2000-01-01") == []
    empty = json.loads(out(capsys, "audit", "report", "--format", "json", "--until", "2000-01-01"))
    assert empty["report"]["verdict"] == "no journal in scope"  # not "every journal holds"
    assert empty["report"]["period"] == "the first record (-) to 2000-01-01T23:59:59.999999Z, UTC"
    assert index("--since", "2999-01-01T00:00:00Z") == []
    assert index("--since", "1h", "--until", "now") == everything  # as `audit list` reads them
    assert index("--ticket", "T-1") == [noisy_runs["noisy"]]
    assert index("--runbook", "plain") == [noisy_runs["plain"], noisy_runs["plain2"]]
    capsys.readouterr()
    assert main(["audit", "report", "--since", "last tuesday"]) == 2
    assert "not a time; accepted: 2026-11-24" in capsys.readouterr().err
    assert main(["audit", "report", "--format", "pdf"]) == 2  # a PDF is a file: -o needed


def test_export_html_marks_failed_rows(
    noisy_runs: dict[str, str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "runbooks" / "bad.yaml").write_text(
        "runbook: bad\nsteps: [{id: fails, run: 'false'}]\n"
    )
    run_id = run_of(workdir / "state", ["run", "bad"], 1)
    page = out(capsys, "audit", "export", run_id, "--format", "html")
    (failed,) = [row for row in page.split("<tr") if "step.finished" in row]
    assert failed.startswith(" class=fail>")


def test_pdf_without_chromium_says_how_to_get_one(
    noisy_runs: dict[str, str],
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PATH", str(workdir / "nowhere"))
    assert main(["audit", "report", "--format", "pdf", "-o", "r.pdf"]) == 2
    assert "apt-get install chromium" in capsys.readouterr().err
    assert not (workdir / "r.pdf").exists()


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
    doc = json.loads(out_code(capsys, 4, "audit", "report", "--format", "json"))
    assert doc["report"]["verified"] is False
    (bad,) = [j for j in doc["report"]["journals"] if j["status"] != "ok"]
    assert bad["journal"] == f"runs/{noisy_runs['plain']}.jsonl"


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
    report = json.loads(out(capsys, "audit", "report", "--format", "json"))
    (row,) = report["index"]
    assert row["final_state"] == "running"  # it never reached another state
    (stuck,) = [s for s in report["summary"] if s["item"] == "running"]
    assert stuck["attention"] and stuck["ids"] == [row["run_id"]]
    md = out(capsys, "audit", "report", "--format", "md")
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
    report = json.loads(out(capsys, "audit", "report", "--format", "json"))
    (row,) = [r for r in report["index"] if r["run_id"] == run_id]
    assert (
        row["reviewed_by"]
        == "victor (unsigned), mallory (unsigned) (DOES NOT COUNT: not vouched for by the ledger)"
    )


def test_checklist_periods_of_the_report_nobody_started_are_listed(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "checklists").mkdir()
    daily = workdir / "checklists" / "daily.yaml"  # found the way `runbook list` finds it
    daily.write_text((REPO / "checklists" / "daily.yaml").read_text())
    # yesterday's work, started today: it belongs to the day it is for
    assert main(["checklist", "start", "daily", "--period", "2026-11-02"]) == 0
    report = json.loads(
        out(capsys, "audit", "report", "--since", "2026-11-01", "--until", "2026-11-03",
            "--format", "json")
    )  # fmt: skip
    rows = {s["item"]: s for s in report["summary"] if s["topic"] == "checklist periods"}
    assert rows["overdue"]["ids"] == ["daily-2026-11-02"]
    assert rows["never started"]["ids"] == ["daily-2026-11-01", "daily-2026-11-03"]
    assert rows["never started"]["attention"]
    assert [c["instance"] for c in report["checklists"]] == ["2026-11-02"]
    # the current period is not overdue yet; without --since there is no first period
    report = json.loads(out(capsys, "audit", "report", "--format", "json"))
    rows = {s["item"]: s for s in report["summary"] if s["topic"] == "checklist periods"}
    assert rows["never started"]["ids"] == []
