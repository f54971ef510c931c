"""The seed's procedures (runbooks/*.yaml) validate, plan as expected and run against a demo target.

Each test gets a fresh demo target (demo/setup.py) under tmp, its own BOT_PORT and an inventory
with absolute paths; the service is stopped in teardown. Expected plans are made with the committed
inventories/demo.yaml (relative paths) from the repository root:

    UPDATE_SEED_PLANS=1 .venv/bin/python -m pytest tests/test_seed_runbooks.py -k plan
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from demo_target import Demo, sha256

from runner.cli import main

REPO = Path(__file__).resolve().parent.parent
RUNBOOKS = sorted(p.stem for p in (REPO / "runbooks").glob("*.yaml"))
PLANS = REPO / "tests" / "cases" / "seed-plans"
# Params a plan needs (required ones) or that make it show more (the branches that act).
PLAN_PARAMS = {
    "config-change": ["key=LOG_LEVEL", "value=DEBUG"],
    "recovery": ["action=restore"],
    "incident-response": ["severity=critical", "reset_circuit_breaker=true"],
}


def test_every_runbook_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert main(["validate"]) == 0


@pytest.mark.parametrize("name", RUNBOOKS)
def test_expected_plan(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("RUNBOOK_STATE_DIR", "/nonexistent/state-must-not-be-made")
    params = [a for p in PLAN_PARAMS.get(name, []) for a in ("-p", p)]
    assert main(["plan", name, "-i", "inventories/demo.yaml", *params]) == 0
    out = capsys.readouterr().out
    expected = PLANS / f"{name}.txt"
    if os.environ.get("UPDATE_SEED_PLANS"):
        PLANS.mkdir(parents=True, exist_ok=True)
        expected.write_text(out)
    assert expected.exists(), f"no expected plan {expected} (UPDATE_SEED_PLANS=1 makes it)"
    assert out == expected.read_text()


def test_backup_then_recovery_restores_identical_data(demo: Demo) -> None:
    before = sha256(demo.db)
    assert demo.run("backup", "kind=data") == 0
    backups = sorted((demo.app / "backups").glob("data_*.tar.gz"))
    assert len(backups) == 1 and backups[0].with_name(backups[0].name + ".sha256").exists()
    # the data changes (a trade is lost) after the backup
    import sqlite3

    con = sqlite3.connect(demo.db)
    con.execute("DELETE FROM trades WHERE id = 7")
    con.commit()
    con.close()
    assert sha256(demo.db) != before
    assert demo.run("recovery", "action=list") == 0
    assert demo.run("recovery", "action=restore", "kind=data", "backup=latest") == 0
    assert sha256(demo.db) == before
    assert demo.health()["status"] == "healthy"
    assert list((demo.app / "backups").glob("pre-restore_*.tar.gz"))


def test_backup_all_and_config(demo: Demo) -> None:
    assert demo.run("backup", "kind=all") == 0
    assert demo.run("backup", "kind=config") == 0
    names = sorted(p.name.split("_")[0] for p in (demo.app / "backups").glob("*.tar.gz"))
    assert names == ["all", "config"]


def test_rolling_update_healthy(demo: Demo) -> None:
    assert demo.run("rolling-update", "monitor_checks=2", "monitor_interval=1") == 0
    assert os.readlink(demo.app / "current") == "releases/1.1.0"
    assert demo.health()["version"] == "1.1.0"


def test_rolling_update_unhealthy_release_rolls_back(demo: Demo) -> None:
    (demo.app / "updates/1.1.0/HEALTH").write_text("unhealthy\n")
    assert demo.run("rolling-update", "monitor_checks=2", "monitor_interval=1") == 1
    assert os.readlink(demo.app / "current") == "releases/1.0.0"
    assert not (demo.app / "releases/1.1.0").exists()
    h = demo.health()
    assert h["status"] == "healthy" and h["version"] == "1.0.0"


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid - 2048 : mid + 2048] = b"\xde\xad\xbe\xef" * 1024
    path.write_bytes(bytes(data))


def test_database_corruption_detected_and_restored(demo: Demo) -> None:
    assert demo.run("database-corruption") == 0  # healthy: nothing to do
    assert demo.run("backup", "kind=data") == 0
    good = sha256(demo.db)
    corrupt(demo.db)
    assert demo.run("sqlite-maintenance") == 1  # the integrity check catches it
    assert demo.run("database-corruption") == 0
    import sqlite3

    con = sqlite3.connect(demo.db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT count(*) FROM trades").fetchone()[0] == 50
    con.close()
    assert good  # (byte identity after restore is test_backup_then_recovery's; VACUUM rewrites)


def test_rollback_from_backup(demo: Demo) -> None:
    assert demo.run("backup", "kind=all") == 0
    (demo.app / ".env").write_text("broken\n")
    assert demo.run("rollback-from-backup") == 0
    assert "ENVIRONMENT=demo" in (demo.app / ".env").read_text()


def test_config_change_applies_and_rolls_back(demo: Demo) -> None:
    env = demo.app / ".env"
    assert demo.run("config-change", "key=LOG_LEVEL", "value=DEBUG") == 0
    assert "LOG_LEVEL=DEBUG" in env.read_text()
    before = env.read_text()
    assert demo.run("config-change", "key=COPY_RATIO", "value=7") == 1  # fails validation
    assert env.read_text() == before


def test_install_maintenance_schedule_is_idempotent(demo: Demo) -> None:
    assert demo.run("install-maintenance-schedule") == 0
    assert demo.run("install-maintenance-schedule") == 0
    bot = (demo.app / "cron/polymarket-bot").read_text()
    assert bot.count("# runbook:") == 7 and "0 2 * * *" in bot
    assert "rotate 30" in (demo.app / "logrotate.d/polymarket-bot").read_text()


def test_incident_response_resets_the_circuit_breaker(demo: Demo) -> None:
    (demo.app / ".circuit_breaker_active").write_text("tripped\n")
    assert demo.run("incident-response", "severity=high", "reset_circuit_breaker=true") == 0
    assert not (demo.app / ".circuit_breaker_active").exists()
    (inc,) = (demo.app / "security/incidents").iterdir()
    assert (inc / "SHA256SUMS").exists()


def test_resource_monitoring_cleans_old_logs(demo: Demo) -> None:
    old = demo.app / "logs/trade_2026-09-01.log.gz"
    assert old.exists()
    assert demo.run("resource-monitoring", "samples=1") == 0
    assert not old.exists()


def test_rpc_check_reads_the_endpoint_from_env(demo: Demo) -> None:
    assert demo.run("rpc-check") == 1  # the demo's RPC_URL (port 8545) is down
    assert demo.run("network-connectivity") == 0  # switches to RPC_FALLBACK_URL
    assert demo.run("rpc-check") == 0


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("health-check", []),
        ("pre-update-checks", []),
        ("dependency-update", []),
        ("security-scan", []),
        ("sqlite-maintenance", []),
        ("certificate-check", []),
        ("service-wont-start", []),
        ("high-memory", ["samples=2", "interval=1", "restart=yes"]),
        ("network-connectivity", []),
        ("diagnostics", []),
    ],
)
def test_runbook_executes(demo: Demo, name: str, params: list[str]) -> None:
    assert demo.run(name, *params) == 0
    assert demo.health()["status"] == "healthy"


# --- the same procedures over SSH (issue 7: update and backup/recovery on the loopback sshd) ------


def _assert_over_ssh(demo: Demo, workdir: Path) -> None:
    """Evidence that this inventory runs `local` through sshd: SSH_CONNECTION is set remotely."""
    probe = workdir / "runbooks" / "probe.yaml"
    probe.write_text(
        "runbook: probe\ntargets: app\nsteps: [{id: where, run: 'test -n \"$SSH_CONNECTION\"'}]\n"
    )
    assert main(["run", str(probe), "-i", str(demo.inv)]) == 0


@pytest.mark.ssh
def test_backup_then_recovery_over_ssh(demo_ssh: Demo, workdir: Path) -> None:
    _assert_over_ssh(demo_ssh, workdir)
    test_backup_then_recovery_restores_identical_data(demo_ssh)


@pytest.mark.ssh
def test_rolling_update_over_ssh(demo_ssh: Demo, workdir: Path) -> None:
    _assert_over_ssh(demo_ssh, workdir)
    test_rolling_update_healthy(demo_ssh)


@pytest.mark.ssh
def test_rolling_update_over_ssh_rolls_back_an_unhealthy_release(demo_ssh: Demo) -> None:
    test_rolling_update_unhealthy_release_rolls_back(demo_ssh)
