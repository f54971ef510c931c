"""Shipping to a real rsyslog: every record of a run arrives unchanged and verifies from the
collected file, also when the collector was down during the run; restarts neither lose nor
duplicate records."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import io_so_far, write_runbook
from rsyslog_fixture import Rsyslog

from runner.cli import main

RUNBOOK = """
runbook: ship
steps:
  - id: one
    run: echo one
  - id: down
    run: "{stop}"
  - id: three
    run: echo three
  - id: four
    run: echo four
"""


def _records(state: Path) -> int:
    return sum(
        len(p.read_text().splitlines())
        for p in [*state.glob("runs/*.jsonl"), state / "ledger.jsonl"]
    )


def test_every_record_of_a_run_reaches_rsyslog_and_verifies_from_the_collected_file(
    workdir: Path, rsyslog: Rsyslog, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    write_runbook(workdir, "ship", RUNBOOK.format(stop="echo still up"))
    monkeypatch.setenv("RUNBOOK_SHIP_TO", rsyslog.url)
    rsyslog.start()
    assert main(["audit", "keygen", "--out", "k"]) == 0
    assert main(["--signing-key", "k", "run", "ship"]) == 0
    rsyslog.stop()  # flushes what it took
    state = workdir / "state"
    got = rsyslog.messages()
    assert len(got) == _records(state)  # every record (run log and ledger), each once
    shipped = {line.split(b"] ", 1)[1] for line in got}
    journal = (next((state / "runs").glob("*.jsonl"))).read_bytes().splitlines()
    assert set(journal) <= shipped  # byte for byte
    assert (
        main(["audit", "verify", "--collected", str(rsyslog.collected), "--public-key", "k.pub"])
        == 0
    )
    # nothing new: a second ship sends nothing (no duplicates after a restart)
    rsyslog.start()
    capsys.readouterr()
    assert main(["audit", "ship"]) == 0
    assert "nothing new" in capsys.readouterr().out
    rsyslog.stop()
    assert len(rsyslog.messages()) == _records(state)


def test_a_collector_down_during_the_run_never_fails_it_and_ship_catches_up(
    workdir: Path, rsyslog: Rsyslog, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    rsyslog.start()
    # the run's second step stops the collector: the rest of the run cannot be shipped live
    write_runbook(workdir, "ship", RUNBOOK.format(stop=f"kill {rsyslog.pid}"))
    monkeypatch.setenv("RUNBOOK_SHIP_TO", rsyslog.url)
    assert main(["run", "ship"]) == 0
    assert "`runbook audit ship` sends the rest later" in capsys.readouterr().err
    rsyslog.stop()
    state = workdir / "state"
    before = len(rsyslog.messages())
    assert 0 < before < _records(state)
    assert main(["audit", "ship"]) == 1  # still down: says so, remembers where it is
    rsyslog.start()
    assert main(["audit", "ship"]) == 0
    rsyslog.stop()
    got = rsyslog.messages()
    assert len(set(got)) == _records(state)  # every record arrived
    assert main(["audit", "verify", "--collected", str(rsyslog.collected)]) == 0
    out = capsys.readouterr().out
    (log,) = (state / "runs").glob("*.jsonl")
    records = len(log.read_text().splitlines())
    assert f"run  {log.stem}: ok, {records} records, closed" in out


def test_a_gap_or_an_edit_in_the_collected_copy_fails_verification(
    workdir: Path, rsyslog: Rsyslog, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "ship", RUNBOOK.format(stop="echo up"))
    assert main(["run", "ship"]) == 0
    rsyslog.start()
    assert main(["audit", "ship", "--to", rsyslog.url]) == 0
    rsyslog.stop()
    lines = rsyslog.collected.read_bytes().splitlines(keepends=True)
    gap = workdir / "gap.log"
    gap.write_bytes(b"".join(lines[:3] + lines[4:]))
    capsys.readouterr()
    assert main(["audit", "verify", "--collected", str(gap)]) == 4
    edited = workdir / "edited.log"
    edited.write_bytes(b"".join(lines).replace(b"echo three", b"echo THREE"))
    assert main(["audit", "verify", "--collected", str(edited)]) == 4


def test_shipping_over_tls_checks_the_collectors_certificate(
    workdir: Path, rsyslog_tls: Rsyslog, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "ship", RUNBOOK.format(stop="echo up"))
    assert main(["run", "ship"]) == 0
    rsyslog_tls.start()
    capsys.readouterr()
    assert main(["audit", "ship", "--to", rsyslog_tls.url]) == 1  # not signed by a CA we trust
    assert "certificate verify failed" in capsys.readouterr().err
    ca = str(rsyslog_tls.dir / "ca.pem")
    assert main(["audit", "ship", "--to", rsyslog_tls.url, "--ca", ca]) == 0
    rsyslog_tls.stop()
    assert len(rsyslog_tls.messages()) == _records(workdir / "state")
    assert main(["audit", "verify", "--collected", str(rsyslog_tls.collected)]) == 0


def test_live_shipping_reads_what_this_run_writes_not_all_history(
    workdir: Path, rsyslog: Rsyslog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each round of live shipping read every journal of the state dir (one round per command
    of the run): a run over a state dir of 2,000 shipped runs read ~2,000 files per step. The
    first round still catches up on everything; the rest read this run's log and the ledger."""
    old = workdir / "state" / "runs"
    old.mkdir(parents=True)
    for i in range(2000):
        (old / f"20250101T000000Z-old-{i:06x}.jsonl").write_text('{"seq": 1}\n')
    steps = "".join(f"  - {{id: s{i}, run: 'true'}}\n" for i in range(30))
    write_runbook(workdir, "many", f"runbook: many\nsteps:\n{steps}")
    monkeypatch.setenv("RUNBOOK_SHIP_TO", rsyslog.url)
    rsyslog.start()
    assert main(["audit", "ship"]) == 0  # history shipped: the steady state
    before = io_so_far("syscr")
    assert main(["audit", "ship"]) == 0  # nothing new: one look at every journal
    one_look = io_so_far("syscr") - before
    before = io_so_far("syscr")
    assert main(["run", "many", "--quiet"]) == 0
    reads = io_so_far("syscr") - before
    rsyslog.stop()
    # one look at everything (catching up), then only this run's log and the ledger
    assert reads < 2 * one_look, f"{reads} reads for a 30-step run; one look: {one_look}"
    state = workdir / "state"
    assert len(rsyslog.messages()) == _records(state)  # and every record arrived, once
