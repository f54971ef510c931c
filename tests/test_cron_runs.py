"""The maintenance schedule as the real cron daemon runs it.

install-maintenance-schedule writes entries such as
`*/30 * * * * cd ~/ops && .venv/bin/runbook run health-check … --yes >> …/cron.log 2>&1`.
Here the production-shaped host (tests/prod_host.py) gets what those entries expect: an ops
checkout in the user's home with `runbook` installed (a venv of the host's own Python that finds
this repository and its dependencies), `runbooks/`, `checklists/`, and `inventories/local.yaml`
naming the host as `local`. The health entry is moved to every minute, nothing else in its line
changed, and Debian's cron runs it: with cron's environment (/bin/sh, PATH=/usr/bin:/bin, no
terminal, the user's HOME). Waiting for the minute makes this the suite's slowest test (~35 s on
average, at most ~70 s).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prod_host import PYTHON, REPO, ProdHost

pytestmark = pytest.mark.ssh

WAIT = 90  # seconds: up to a minute for cron's next tick, then the run itself


@pytest.fixture
def cron() -> Iterator[None]:
    """Debian's cron daemon: one of our own for the test, or the one already running (cron
    takes a lock: a second one exits at once). Ours runs every crontab on the machine while it
    lives, like the suite's other system-wide fixtures (users, sudoers): a machine for tests."""
    daemon = subprocess.Popen(["cron", "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with contextlib.suppress(subprocess.TimeoutExpired):  # still running: it is ours
        daemon.wait(timeout=0.5)
    try:
        yield None
    finally:
        if daemon.poll() is None:
            daemon.terminate()
            daemon.wait(timeout=10)


def ops_checkout(h: ProdHost) -> Path:
    """~/ops as install-maintenance-schedule's entries expect it, owned by the host's user."""
    ops = h.home / "ops"
    h.sh(f"{PYTHON} -m venv --without-pip {ops}/.venv", check=True)
    venv_site = next((ops / ".venv" / "lib").glob("python3*/site-packages"))
    # this checkout and the libraries the runner's own venv has (the user cannot run its
    # interpreter: it lives under /root)
    (venv_site / "runbook-checkout.pth").write_text(f"{REPO}\n{sysconfig.get_paths()['purelib']}\n")
    script = ops / ".venv" / "bin" / "runbook"
    script.write_text(f"#!{ops}/.venv/bin/python\nfrom runner.__main__ import run\n\nrun()\n")
    script.chmod(0o755)
    for name in ("runbooks", "checklists"):
        (ops / name).symlink_to(REPO / name)
    data = yaml.safe_load(h.inv.read_text())
    local = {"hosts": {"local": {"connection": "local"}}, "groups": {"app": ["local"]}}
    (ops / "inventories").mkdir()
    (ops / "inventories" / "local.yaml").write_text(
        yaml.safe_dump({**local, "vars": data["vars"]}, sort_keys=False)
    )
    subprocess.run(["chown", "-R", f"{h.user}:{h.user}", str(ops)], check=True)
    return ops


def wait_for_run(runs: Path) -> list[dict[str, Any]]:
    """The records of the first health-check run once it has finished ([] if none in WAIT)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        time.sleep(1)
        for log in sorted(runs.glob("*-health-check-*.jsonl")):
            whole = log.read_text().split("\n")[:-1]  # lines being written are not whole yet
            records = [json.loads(line) for line in whole]
            if records and records[-1]["event"] == "run.finished":
                return records
    return []


def test_cron_runs_the_health_check_from_the_schedule(prod_host: ProdHost, cron: None) -> None:
    h = prod_host
    ops = ops_checkout(h)
    assert h.run("install-maintenance-schedule") == 0
    entries = h.crontab().splitlines()
    health = next(line for line in entries if line.endswith("# runbook:health"))
    assert health.startswith("*/30 * * * * ")
    every_minute = "* * * * * " + health.removeprefix("*/30 * * * * ")
    table = "".join(f"{every_minute if e == health else e}\n" for e in entries)
    subprocess.run(["crontab", "-u", h.user, "-"], input=table, text=True, check=True)

    records = wait_for_run(ops / ".runbook" / "runs")
    cron_log = Path(h.app) / "logs" / "cron.log"
    said = cron_log.read_text() if cron_log.exists() else "(no cron.log)"
    assert records, f"cron did not run the health check within {WAIT}s; cron.log:\n{said}"
    started, end = records[0], records[-1]
    assert started["event"] == "run.started" and started["actor"]["user"] == h.user
    assert "--yes" in started["argv"] and "mode=comprehensive" in started["argv"]
    assert end["event"] == "run.finished" and end["outcome"] == "succeeded", said
    # the audit log it left verifies, read as its user would
    verify = h.sh(f"cd {ops} && .venv/bin/runbook audit verify", check=True).stdout
    assert "ok" in verify and "FAILED" not in verify
    assert "succeeded (exit 0)" in said
