"""The production-shaped host itself, and the seed's health check on it over SSH."""

from __future__ import annotations

import pwd
from pathlib import Path

import pytest
import yaml
from conftest import run_events
from prod_host import PRODUCTION, ProdHost

pytestmark = pytest.mark.ssh


def test_the_host_is_shaped_like_the_seeds_deployment(prod_host: ProdHost) -> None:
    h = prod_host
    owner = pwd.getpwuid(h.app.stat().st_uid).pw_name
    assert owner == h.user and (h.app / "data" / "trade_history.db").is_file()
    assert h.health()["status"] == "healthy"
    # the user's sudo is the rules, nothing more
    assert h.sh("sudo -n true").returncode != 0
    assert h.sh(f"sudo -n crontab -u {h.user} -l; echo $?").stdout.strip()[-1] in "01"
    # the inventory is production.example.yaml with other values only
    mine, prod = yaml.safe_load(h.inv.read_text()), yaml.safe_load(PRODUCTION.read_text())
    assert mine["groups"] == prod["groups"] and mine["vars"].keys() == prod["vars"].keys()
    assert list(mine["hosts"]) == list(prod["hosts"]) == ["app1"]


def test_health_check_runs_over_ssh_as_the_bot_user(prod_host: ProdHost, workdir: Path) -> None:
    h = prod_host
    assert h.run("health-check") == 0
    events = run_events(workdir / "state")
    assert {e["host"] for e in events if e["event"] == "step.finished"} == {"app1"}
    # the bot goes down: the same check, through the same connection, fails
    h.sh(f"echo unhealthy > {h.app}/.health_override", check=True)
    assert h.run("health-check", "mode=quick") == 1


def test_seed_map_names_tests_that_exist() -> None:
    import re

    root = PRODUCTION.parent.parent
    text = (root / "docs" / "seed-map.md").read_text()
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text)
    assert len(named) > 25
    for path, name in named:
        assert f"def {name}(" in (root / path).read_text(), f"{path}::{name}"


def test_a_user_left_by_a_killed_run_is_swept() -> None:
    """The fixture's teardown did not run (SIGKILL): the next run removes what it left."""
    import os
    import subprocess

    from prod_host import COMMENT, _require, _sweep

    _require()
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    user = f"pmbot-swept{os.getpid() % 1000}"
    subprocess.run(
        ["useradd", "-m", "-c", f"{COMMENT}{dead.pid}", user], check=True, capture_output=True
    )
    subprocess.run(["crontab", "-u", user, "-"], input="0 1 * * * true\n", text=True, check=True)
    _sweep()
    assert user not in Path("/etc/passwd").read_text()
    assert not Path(f"/var/spool/cron/crontabs/{user}").exists()
    assert not Path(f"/home/{user}").exists()
