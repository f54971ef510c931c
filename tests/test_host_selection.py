"""Host selection: the seed's runbooks target the application group, so a production inventory
plans its application servers and never the operator's machine; without an inventory, `local`
is the only host."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cli import main

REPO = Path(__file__).resolve().parent.parent
RUNBOOKS = sorted((REPO / "runbooks").glob("*.yaml"))


def test_seed_runbooks_target_the_application_group() -> None:
    for path in RUNBOOKS:
        assert "\ntargets: app\n" in path.read_text(), path.name


def test_production_inventory_plans_app1_never_local(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    inv = "inventories/production.example.yaml"
    assert main(["plan", "health-check", "-i", inv]) == 0
    hosts = [line for line in capsys.readouterr().out.splitlines() if line.startswith("host ")]
    assert hosts == ["host app1"]


def test_without_inventory_local_is_the_only_host(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "runbooks" / "t.yaml").write_text(
        "runbook: t\ntargets: [app, web]\nsteps: [{id: a, run: echo hi}]\n"
    )
    assert main(["plan", "t"]) == 0
    hosts = [line for line in capsys.readouterr().out.splitlines() if line.startswith("host ")]
    assert hosts == ["host local"]
