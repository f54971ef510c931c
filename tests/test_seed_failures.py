"""Each seed procedure in the case it exists for, over SSH on the production-shaped host
(tests/prod_host.py), asserting the host's end state. No step may print SKIPPED."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from pager import Pager
from prod_host import REPO, ProdHost
from test_seed_runbooks import corrupt

pytestmark = pytest.mark.ssh


@pytest.fixture(autouse=True)
def nothing_skipped(prod_host: ProdHost) -> object:
    yield None
    assert "SKIPPED" not in prod_host.printed()


def main_pid(h: ProdHost) -> str:
    ctl = f"/opt/runbook-test/{h.user}/systemctl"
    return h.sh(f"sudo -n {ctl} show -p MainPID --value", check=True).stdout.strip()


# --- rolling-update ------------------------------------------------------------------------------


def test_rolling_update_deploys_and_reads_the_service_log(prod_host: ProdHost) -> None:
    h = prod_host
    assert h.run("rolling-update", "monitor_checks=1", "monitor_interval=0") == 0
    assert os.readlink(h.app / "current") == "releases/1.1.0"
    assert h.health()["version"] == "1.1.0"


def test_rolling_update_fails_and_rolls_back_when_the_service_log_is_absent(
    prod_host: ProdHost,
) -> None:
    h = prod_host
    h.set_vars(service_logs=f"cat {h.app}/logs/no-such.log")
    assert h.run("rolling-update", "monitor_checks=1", "monitor_interval=0") == 1
    assert os.readlink(h.app / "current") == "releases/1.0.0"
    assert not (h.app / "releases" / "1.1.0").exists()
    assert h.health() | {"version": "1.0.0", "status": "healthy"} == h.health()


# --- certificate-check ---------------------------------------------------------------------------


def expiring_cert(h: ProdHost, days: int = 2) -> str:
    cert = h.app / "security" / "certs" / "bot.pem"
    h.sh(
        f"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days {days}"
        f" -subj /CN=localhost -keyout {cert.with_suffix('.key')} -out {cert}",
        check=True,
    )
    return h.sh(f"openssl x509 -in {cert} -noout -enddate", check=True).stdout


def certbot(h: ProdHost, body: str) -> str:
    """A certbot for this host (no ACME server here): `renew` runs `body`."""
    path = h.home / "certbot"
    path.write_text(f'#!/bin/sh\n[ "$1" = renew ] || exit 2\n{body}\n')
    path.chmod(0o755)
    return str(path)


def test_expiring_certificate_is_renewed_and_its_new_end_date_checked(
    prod_host: ProdHost,
) -> None:
    h = prod_host
    before = expiring_cert(h)
    cert = h.app / "security" / "certs" / "bot.pem"
    renew = (
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 90"
        f" -subj /CN=localhost -keyout {cert.with_suffix('.key')} -out {cert} 2>/dev/null"
    )
    h.set_vars(certbot_cmd=certbot(h, renew))
    assert h.run("certificate-check") == 0
    after = h.sh(f"openssl x509 -in {cert} -noout -enddate", check=True).stdout
    assert after != before
    assert h.sh(f"openssl x509 -in {cert} -noout -checkend {60 * 86400}").returncode == 0


def test_expiring_certificate_without_certbot_fails(prod_host: ProdHost) -> None:
    expiring_cert(prod_host)
    prod_host.set_vars(certbot_cmd="")
    assert prod_host.run("certificate-check") == 1


def test_a_renewal_that_leaves_the_old_certificate_fails(prod_host: ProdHost) -> None:
    h = prod_host
    expiring_cert(h)
    h.set_vars(certbot_cmd=certbot(h, "echo 'Congratulations, all renewals succeeded'"))
    assert h.run("certificate-check") == 1
    verify = [e for e in h.events() if e["event"] == "check" and e.get("scope") == "verify"]
    assert verify and not verify[-1]["ok"]


# --- high-memory, resource-monitoring ------------------------------------------------------------


def test_high_memory_restarts_and_fails_when_memory_stays_high(prod_host: ProdHost) -> None:
    h = prod_host
    pid = main_pid(h)
    # threshold 0: memory is "high" before and still after the restart
    assert h.run("high-memory", "threshold=0", "samples=1", "interval=0") == 1
    assert main_pid(h) != pid and h.health()["status"] == "healthy"
    recheck = [e for e in h.events() if e["event"] == "step.finished" and e["step"] == "recheck"]
    assert recheck and not recheck[-1]["ok"]


def test_high_memory_restart_that_brings_memory_down_passes(prod_host: ProdHost) -> None:
    h = prod_host
    pid = main_pid(h)
    assert h.run("high-memory", "threshold=100", "restart=yes", "samples=1", "interval=0") == 0
    assert main_pid(h) != pid


def test_resource_monitoring_enforces_the_thresholds(prod_host: ProdHost) -> None:
    h = prod_host
    old_log = h.app / "logs" / "trade_2026-09-01.log.gz"
    assert h.run("resource-monitoring", "samples=1") == 0
    assert not old_log.exists()  # the 30-day clean-up ran
    h.sh(f"echo old | gzip > {old_log} && touch -d 2025-01-01 {old_log}", check=True)
    h.set_vars(disk_max_percent=0)
    assert h.run("resource-monitoring", "samples=1") == 1
    assert old_log.exists()  # stopped before the clean-up
    h.set_vars(disk_max_percent=99, mem_max_percent=0)
    assert h.run("resource-monitoring", "samples=1") == 1


# --- incident-response: the circuit breaker ------------------------------------------------------


def test_breaker_reset_whose_verification_fails_restores_the_breaker(prod_host: ProdHost) -> None:
    h = prod_host
    breaker = h.app / ".circuit_breaker_active"
    h.sh(f"echo 'tripped: max daily loss' > {breaker}", check=True)
    h.sh(f"echo unhealthy > {h.app}/.health_override", check=True)
    assert h.run("incident-response", "reset_circuit_breaker=true") == 1
    assert breaker.read_text() == "tripped: max daily loss\n"
    assert not (h.app / ".circuit_breaker_reset").exists()


def test_breaker_reset_on_a_healthy_service(prod_host: ProdHost) -> None:
    h = prod_host
    breaker = h.app / ".circuit_breaker_active"
    h.sh(f"echo tripped > {breaker}", check=True)
    assert h.run("incident-response", "reset_circuit_breaker=true") == 0
    assert not breaker.exists() and not (h.app / ".circuit_breaker_reset").exists()
    (incident,) = (h.app / "security" / "incidents").iterdir()
    assert (incident / "SHA256SUMS").is_file()


# --- backup, recovery ----------------------------------------------------------------------------


def test_backups_are_encrypted_to_the_inventorys_recipient_with_no_plaintext_left(
    prod_host: ProdHost,
) -> None:
    h = prod_host
    for kind in ("config", "data", "all"):
        assert h.run("backup", f"kind={kind}") == 0
    backups = h.app / "backups"
    archives = sorted(p.name for p in backups.iterdir() if not p.name.endswith(".sha256"))
    assert [a.split("_")[0] for a in archives] == ["all", "config", "data"]
    assert all(a.endswith(".tar.gz.gpg") for a in archives), archives
    for name in archives:
        data = (backups / name).read_bytes()
        assert b".env" not in data and b"SQLite format" not in data  # ciphertext, not tar.gz
        # encrypted to the inventory's recipient: the host's key opens it
        listing = h.sh(f"gpg --batch -q -d {backups / name} | tar -tz", check=True).stdout
        assert listing.strip()
        assert (backups / f"{name}.sha256").is_file()
    left = [p.name for p in backups.iterdir() if p.name.startswith(".")]
    assert left == []
    decrypt = [
        e for e in h.events() if e["event"] == "check" and e.get("name", "").startswith("Decrypts")
    ]
    assert len(decrypt) == 3 and all(e["ok"] for e in decrypt)


def test_corrupt_database_is_restored_from_the_encrypted_backup(prod_host: ProdHost) -> None:
    import sqlite3

    h = prod_host
    assert h.run("backup", "kind=data") == 0
    corrupt(h.db)
    assert h.run("sqlite-maintenance") == 1  # the integrity check sees it
    assert h.run("database-corruption") == 0
    restored = [e for e in h.events() if e["event"] == "step.finished" and e["ok"]]
    assert "restore/restore" in {e["step"] for e in restored}
    con = sqlite3.connect(f"file:{h.db}?mode=ro", uri=True)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT count(*) FROM trades").fetchone()[0] == 50
    con.close()
    assert h.health()["status"] == "healthy"
    assert [p for p in (h.app / "backups").iterdir() if p.name.startswith(".")] == []


# --- install-maintenance-schedule ----------------------------------------------------------------

SCHEDULE = {
    "health": ("*/30 * * * *", "run health-check -p mode=comprehensive"),
    "daily": ("0 2 * * *", "checklist run daily"),
    "weekly": ("0 3 * * 0", "checklist run weekly"),
    "security": ("0 4 * * 1", "run security-scan"),
    "backup-config": ("0 */12 * * *", "run backup -p kind=config"),
    "backup-data": ("30 1 * * *", "run backup -p kind=data"),
    "backup-all": ("0 1 * * 0", "run backup -p kind=all"),
}


def test_schedule_installs_runbook_cron_entries_in_the_real_crontab(prod_host: ProdHost) -> None:
    h = prod_host
    # the user's own entry survives; a stale runbook entry is replaced, not duplicated
    mine = "15 5 * * * echo mine"
    stale = "0 9 * * * old-script.sh  # runbook:daily"
    subprocess.run(
        ["crontab", "-u", h.user, "-"], input=f"{mine}\n{stale}\n", text=True, check=True
    )
    assert h.run("install-maintenance-schedule") == 0
    assert h.run("install-maintenance-schedule") == 0
    lines = h.crontab().splitlines()
    assert mine in lines and stale not in lines
    marked = {line.rsplit("# runbook:", 1)[1]: line for line in lines if "# runbook:" in line}
    assert marked.keys() == SCHEDULE.keys() and len(lines) == len(SCHEDULE) + 1
    for entry, (when, command) in SCHEDULE.items():
        line = marked[entry]
        assert line.startswith(f"{when} cd {h.home}/ops && .venv/bin/runbook ")
        assert f" {command} -i inventories/local.yaml --yes" in line
    rotate = Path("/etc/logrotate.d") / h.unit
    assert f"{h.app}/logs/*.log" in rotate.read_text()


def test_schedule_fails_when_the_crontab_does_not_take_the_entries(prod_host: ProdHost) -> None:
    """The verification reads the crontab back: a crontab command that drops what it is given
    (here: one that accepts and ignores installs) fails the run."""
    h = prod_host
    fake = h.home / "crontab-ignores-installs"
    fake.write_text(
        '#!/bin/sh\ncase "$*" in *-l*) exec sudo -n crontab "$@" ;; esac\ncat >/dev/null\n'
    )
    fake.chmod(0o755)
    h.set_vars(crontab=str(fake))
    assert h.run("install-maintenance-schedule") == 1
    assert "# runbook:" not in h.crontab()


# --- network-connectivity ------------------------------------------------------------------------


def env_value(h: ProdHost, key: str) -> str:
    lines = (h.app / ".env").read_text().splitlines()
    return next(line.split("=", 1)[1] for line in lines if line.startswith(f"{key}="))


def test_rpc_down_switches_to_the_fallback_and_verifies_it(prod_host: ProdHost) -> None:
    h = prod_host
    down = env_value(h, "RPC_URL")  # http://127.0.0.1:8545: nothing listens there
    assert h.run("rpc-check") == 1
    pid = main_pid(h)
    assert h.run("network-connectivity") == 0
    assert env_value(h, "RPC_URL") == f"http://localhost:{h.port}/rpc"
    assert f"RPC_URL={down}" in (h.app / ".env.backup").read_text()
    assert main_pid(h) != pid and h.health()["status"] == "healthy"
    assert h.run("rpc-check") == 0  # the bot's endpoint, read from .env, answers from the host
    assert h.run("network-connectivity") == 0  # healthy now: nothing switched again
    assert env_value(h, "RPC_URL") == f"http://localhost:{h.port}/rpc"


def test_no_endpoint_answering_fails_with_nothing_changed(prod_host: ProdHost) -> None:
    h = prod_host
    env = (h.app / ".env").read_text()
    h.sh(f"sed -i 's|^RPC_FALLBACK_URL=.*|RPC_FALLBACK_URL=http://127.0.0.1:9/rpc|' {h.app}/.env")
    changed = (h.app / ".env").read_text()
    assert changed != env
    assert h.run("network-connectivity") == 1
    assert (h.app / ".env").read_text() == changed and not (h.app / ".env.backup").exists()


# --- dependency-update ---------------------------------------------------------------------------


def wheel(h: ProdHost, version: str) -> None:
    """A real (tiny) wheel of `pmdemo` in the host's package mirror."""
    import zipfile

    info = f"pmdemo-{version}.dist-info"
    files = {
        "pmdemo/__init__.py": f"__version__ = {version!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: pmdemo\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    path = h.home / "wheels" / f"pmdemo-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    path.chmod(0o644)


def installed(h: ProdHost) -> str:
    py = f"{h.app}/venv/bin/python"
    code = "import importlib.metadata as m; print(m.version('pmdemo'))"
    return h.sh(f'{py} -c "{code}"', check=True).stdout.strip()


@pytest.fixture
def vulnerable(prod_host: ProdHost) -> ProdHost:
    """pmdemo 1.0 installed, 1.1 in the mirror, and an advisory: fixed in 1.1."""
    h = prod_host
    wheel(h, "1.0")
    h.sh(f"{h.app}/venv/bin/python -m pip install -q pmdemo==1.0", check=True)
    wheel(h, "1.1")
    (h.app / "requirements.txt").write_text("pmdemo\n")
    advisories(h, "pmdemo<1.1 PMD-2026-1 order signing bypass")
    return h


def advisories(h: ProdHost, line: str) -> None:
    (Path("/opt/runbook-test") / h.user / "advisories.txt").write_text(line + "\n")


def test_vulnerabilities_found_are_fixed_by_the_upgrade_and_the_rescan_is_clean(
    vulnerable: ProdHost,
) -> None:
    h = vulnerable
    assert installed(h) == "1.0"
    assert h.run("dependency-update") == 0
    assert installed(h) == "1.1" and h.health()["status"] == "healthy"
    scans = [e for e in h.events() if e["event"] == "step.finished" and e["step"] == "scan"]
    assert "PMD-2026-1" in scans[0]["stdout"]["head"]  # found, and the run went on


def test_a_rescan_still_vulnerable_rolls_the_upgrade_back(vulnerable: ProdHost) -> None:
    h = vulnerable
    advisories(h, "pmdemo<2.0 PMD-2026-2 not fixed yet")
    assert h.run("dependency-update") == 1
    assert installed(h) == "1.0"
    assert h.health()["status"] == "healthy"


def test_an_unhealthy_service_after_the_upgrade_rolls_it_back(vulnerable: ProdHost) -> None:
    h = vulnerable
    h.sh(f"echo unhealthy > {h.app}/.health_override", check=True)
    assert h.run("dependency-update") == 1
    assert installed(h) == "1.0"


# --- incident-response: classification and paging ------------------------------------------------


def paging(h: ProdHost, pager: Pager) -> None:
    h.set_vars(
        page_url=f"{pager.url}/enqueue",
        page_routing_keys={level: f"key-{level}" for level in ("L1", "L2", "L3", "L4")},
        page_ack_url=f"{pager.url}/ack",
        slack_webhook_url=f"{pager.url}/slack",
    )


def test_service_down_is_classified_critical_and_escalates_until_acknowledged(
    prod_host: ProdHost, pager: Pager
) -> None:
    h = prod_host
    paging(h, pager)
    pager.acking = {"L2"}
    h.sh(f"sudo -n /opt/runbook-test/{h.user}/systemctl stop {h.unit}", check=True)
    assert h.run("incident-response", "ack_within=1s", "summary=bot stopped") == 0
    pd = [p["body"] for p in pager.pages if p["path"] == "/enqueue"]
    assert [b["routing_key"] for b in pd] == ["key-L1", "key-L2"]  # L1 silent, L2 acknowledged
    assert {b["payload"]["severity"] for b in pd} == {"critical"}
    (slack,) = [p["body"] for p in pager.pages if p["path"] == "/slack"]
    assert slack["text"].startswith("[CRITICAL]")
    (incident,) = (h.app / "security" / "incidents").iterdir()
    assert "severity critical" in (incident / "summary.txt").read_text()
    assert pd[0]["dedup_key"] == f"{incident.name}-L1"


def test_degraded_is_classified_high_and_nobody_acknowledging_fails(
    prod_host: ProdHost, pager: Pager
) -> None:
    h = prod_host
    paging(h, pager)
    h.sh(f"echo degraded > {h.app}/.health_override", check=True)
    assert h.run("incident-response", "ack_within=1s") == 1
    pd = [p["body"] for p in pager.pages if p["path"] == "/enqueue"]
    assert [b["payload"]["custom_details"]["level"] for b in pd] == ["L1", "L2", "L3"]
    assert {b["payload"]["severity"] for b in pd} == {"error"}  # PagerDuty's name for high


def test_a_given_severity_is_not_reassessed(prod_host: ProdHost, pager: Pager) -> None:
    h = prod_host
    paging(h, pager)
    pager.acking = {"L1"}
    assert h.run("incident-response", "severity=medium", "ack_within=1s") == 0
    pd = [p["body"] for p in pager.pages if p["path"] == "/enqueue"]
    assert [b["payload"]["severity"] for b in pd] == ["warning"]


# --- the other procedures, each in the case it exists for ----------------------------------------


def test_unhealthy_release_is_rolled_back(prod_host: ProdHost) -> None:
    h = prod_host
    (h.app / "updates" / "1.1.0" / "HEALTH").write_text("unhealthy\n")
    assert h.run("rolling-update", "monitor_checks=1", "monitor_interval=0") == 1
    assert os.readlink(h.app / "current") == "releases/1.0.0"
    assert h.health() | {"status": "healthy", "version": "1.0.0"} == h.health()


def test_service_that_wont_start_gets_its_permissions_back_and_runs(prod_host: ProdHost) -> None:
    h = prod_host
    ctl = f"sudo -n /opt/runbook-test/{h.user}/systemctl"
    h.sh(f"{ctl} stop {h.unit}", check=True)
    main_py = h.app / "main.py"
    os.chown(main_py, 0, 0)  # a root-owned, unreadable main.py: what the seed's fix is for
    main_py.chmod(0o000)
    assert h.health()["status"] == "down"
    assert h.run("service-wont-start") == 0
    st = main_py.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (h.app.stat().st_uid, 0o750)
    assert h.health()["status"] == "healthy"


def test_invalid_configuration_is_rolled_back(prod_host: ProdHost) -> None:
    h = prod_host
    env = (h.app / ".env").read_text()
    assert h.run("config-change", "key=COPY_RATIO", "value=7") == 1  # fails validation
    assert (h.app / ".env").read_text() == env and h.health()["status"] == "healthy"
    assert h.run("config-change", "key=LOG_LEVEL", "value=DEBUG") == 0
    assert "LOG_LEVEL=DEBUG" in (h.app / ".env").read_text()


def test_broken_deployment_is_rolled_back_from_the_encrypted_full_backup(
    prod_host: ProdHost,
) -> None:
    h = prod_host
    assert h.run("backup", "kind=all") == 0
    good = (h.app / ".env").read_text()
    h.sh(f"echo broken > {h.app}/.env", check=True)
    assert h.run("rollback-from-backup") == 0
    assert (h.app / ".env").read_text() == good and h.health()["status"] == "healthy"
    assert [p for p in (h.app / "backups").iterdir() if p.name.startswith(".")] == []


def test_pre_update_checks_stop_at_a_missing_package(prod_host: ProdHost) -> None:
    h = prod_host
    assert h.run("pre-update-checks", "version=1.1.0") == 0
    assert len(list((h.app / "backups").glob("*.tar.gz.gpg"))) == 2  # config and data
    assert h.run("pre-update-checks", "version=9.9.9") == 1


def test_security_scan_finds_what_it_exists_for(prod_host: ProdHost) -> None:
    h = prod_host
    assert h.run("security-scan") == 0
    (report,) = (h.app / "security").glob("scan_*.txt")
    assert "passed" in report.read_text()
    (h.app / ".env").chmod(0o644)  # keys readable by anyone on the host
    assert h.run("security-scan") == 1
    (h.app / ".env").chmod(0o600)
    advisories(h, "pip<999 PIP-1 vulnerable pip")  # pip is in the bot's environment
    assert h.run("security-scan") == 1


def test_sqlite_maintenance_vacuums_a_sound_database_and_refuses_a_corrupt_one(
    prod_host: ProdHost,
) -> None:
    h = prod_host
    assert h.run("sqlite-maintenance") == 0
    before = h.db.read_bytes()
    corrupt(h.db)
    assert h.run("sqlite-maintenance") == 1
    assert h.db.read_bytes() != before  # left as found (corrupt), not vacuumed over


def test_diagnostics_fail_when_the_configuration_does_not_load(prod_host: ProdHost) -> None:
    h = prod_host
    assert h.run("diagnostics") == 0
    (h.app / "config" / "settings.py").write_text("raise SystemExit('bad settings')\n")
    assert h.run("diagnostics") == 1


def test_daily_checklist_runs_the_runbooks_of_its_items(
    prod_host: ProdHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.cli import main

    h = prod_host
    monkeypatch.setenv("RUNBOOK_PATH", str(REPO))
    assert h.run("backup", "kind=data") == 0
    assert main(["checklist", "start", "daily"]) == 0
    main(["checklist", "run", "daily", "-i", str(h.inv), "--yes"])
    ran = {Path(e["file"]).stem for e in h.events() if e["event"] == "run.started"}
    assert {"health-check", "resource-monitoring", "security-scan"} <= ran
