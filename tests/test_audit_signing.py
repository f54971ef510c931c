"""Signed, ledgered audit logs: each kind of tampering is detected and named (issue 6)."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import write_runbook

from runner.audit import signing
from runner.audit.journal import canonical, record_hash
from runner.cli import main

SECRET = "pa55-w0rd-xyz"


@pytest.fixture
def keys(workdir: Path) -> tuple[Path, Path]:
    assert main(["audit", "keygen", "--out", str(workdir / "keys" / "audit")]) == 0
    private = workdir / "keys" / "audit"
    assert private.stat().st_mode & 0o777 == 0o600
    return private, workdir / "keys" / "audit.pub"


@pytest.fixture
def signed_run(workdir: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUNBOOK_SIGNING_KEY", str(keys[0]))
    write_runbook(
        workdir,
        "work",
        """
runbook: work
change: emergency
params: {token: {type: string, secret: true, required: true}}
steps:
  - {id: one, run: echo one}
  - {id: two, run: "echo using {{ token }}"}
  - {id: three, run: echo three}
""",
    )
    assert main(["run", "work", "-p", f"token={SECRET}", "--ticket", "CHG-42"]) == 0
    (log,) = (workdir / "state" / "runs").glob("*.jsonl")
    return log


def verify(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["audit", "verify", *extra])
    return code, capsys.readouterr().out


def test_clean_signed_log_verifies_with_the_public_key(
    signed_run: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = verify(capsys, "--public-key", str(keys[1]))
    assert code == 0, out
    last = json.loads(signed_run.read_text().splitlines()[-1])
    assert last["event"] == "run.signature"


def test_inserted_record_with_recomputed_hashes_fails_the_signature(
    signed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [json.loads(x) for x in signed_run.read_text().splitlines()]
    forged = dict(records[3], command="echo innocent", seq=4)
    records.insert(3, forged)
    prev = records[2]["hash"]
    for i, r in enumerate(records[3:], start=4):  # renumber and re-chain everything after it
        r["seq"], r["prev"] = i, prev
        r["hash"] = record_hash(r)
        prev = r["hash"]
    signed_run.write_bytes(b"".join(canonical(r) + b"\n" for r in records))
    code, out = verify(capsys)
    assert code == 4 and ("signature" in out or "ledger" in out.lower())


def test_last_three_records_cut_off_is_caught_by_the_ledger(
    signed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = signed_run.read_bytes().splitlines(keepends=True)
    signed_run.write_bytes(b"".join(lines[:-3]))
    code, out = verify(capsys)
    assert code == 4 and "truncated" in out


def test_deleted_run_file_is_caught_by_the_ledger(
    signed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_run.unlink()
    code, out = verify(capsys)
    assert code == 4 and "missing (deleted)" in out


def test_resigned_with_another_key_is_named(
    signed_run: Path, keys: tuple[Path, Path], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signing.keygen(workdir / "keys" / "mallory")
    mallory = signing.load_signer(str(workdir / "keys" / "mallory"))
    assert mallory is not None
    records = [json.loads(x) for x in signed_run.read_text().splitlines()]
    sig = records[-1]
    sig.update(
        key_id=mallory.key_id, public_key=mallory.public_b64, signature=mallory.sign(sig["signs"])
    )
    sig["hash"] = record_hash(sig)
    signed_run.write_bytes(b"".join(canonical(r) + b"\n" for r in records))
    code, out = verify(capsys, "--public-key", str(keys[1]))
    assert code == 4 and "signed by another key" in out


def test_unsigned_run_fails_when_a_key_is_expected(
    workdir: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "plain", "runbook: plain\nsteps: [{id: a, run: 'true'}]\n")
    assert main(["run", "plain"]) == 0
    code, out = verify(capsys, "--public-key", str(keys[1]))
    assert code == 4 and "unsigned, but a signing key was expected" in out


def test_list_filters_show_and_emergency_review(
    signed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = signed_run.stem
    capsys.readouterr()
    assert main(["audit", "list", "--needs-review"]) == 0
    assert run_id in capsys.readouterr().out
    assert main(["audit", "list", "--ticket", "CHG-999"]) == 0
    assert run_id not in capsys.readouterr().out
    assert main(["audit", "show", run_id]) == 0
    shown = capsys.readouterr().out
    assert (
        "ticket:    CHG-42" in shown
        and "change: emergency" in shown
        and "audit:    verified" in shown
    )
    assert SECRET not in shown and '"token": "***"' in shown
    assert main(["audit", "review", run_id, "--by", "carol"]) == 0
    capsys.readouterr()
    assert main(["audit", "list", "--needs-review"]) == 0
    assert run_id not in capsys.readouterr().out
    assert main(["audit", "verify"]) == 0


class _Balanced(HTMLParser):
    VOID = frozenset({"meta", "br", "img", "hr", "input", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_exports_hold_no_secret_and_html_is_well_formed(
    signed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = signed_run.stem
    outputs = {}
    for fmt in ("md", "html", "json", "csv"):
        capsys.readouterr()
        assert main(["audit", "export", run_id, "--format", fmt]) == 0
        outputs[fmt] = capsys.readouterr().out
        assert SECRET not in outputs[fmt], fmt
    parser = _Balanced()
    parser.feed(outputs["html"])
    assert parser.errors == [] and parser.stack == []
    text = "".join(parser.text)
    for step in ("one", "two", "three"):
        assert f"step {step} started" in text
    assert "Audit verification: verified" in text
    assert "<script" not in outputs["html"] and "http" not in outputs["html"].split("<body>")[
        0
    ].replace("http-equiv", "")
    rows = list(csv.DictReader(io.StringIO(outputs["csv"])))
    assert {r["step"] for r in rows if r["event"] == "step.started"} == {"one", "two", "three"}
    assert json.loads(outputs["json"])[0]["verified"] == "verified"
