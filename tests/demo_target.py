"""The demo target as a pytest fixture: a fresh deployment (demo/setup.py) under tmp, its own
BOT_PORT, an inventory with absolute paths, the service started and stopped in teardown.
`demo_ssh` reaches the same target through the loopback sshd.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runner.cli import main

REPO = Path(__file__).resolve().parent.parent

_ports = itertools.count(18200 + (os.getpid() % 50) * 40)


@dataclass
class Demo:
    app: Path
    inv: Path
    ctl: str
    env: dict[str, str]

    def run(self, name: str, *params: str) -> int:
        args = ["run", str(REPO / "runbooks" / f"{name}.yaml"), "-i", str(self.inv), "--yes"]
        for p in params:
            args += ["-p", p]
        return main(args)

    def sh(self, cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cmd, shell=True, env=self.env, capture_output=True, text=True, check=False
        )

    def health(self) -> dict[str, object]:
        import urllib.error
        import urllib.request

        url = f"http://127.0.0.1:{self.env['BOT_PORT']}/health"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as err:
            return json.load(err)

    @property
    def db(self) -> Path:
        return self.app / "data" / "trade_history.db"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def demo(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Demo]:
    port = next(_ports)
    root = workdir / "demo-root"
    subprocess.run(
        [sys.executable, str(REPO / "demo/setup.py"), "--root", str(root)],
        check=True,
        capture_output=True,
    )
    app = root / "polymarket-copy-bot"
    env_file = app / ".env"  # the fallback RPC endpoint is this target's service
    env_file.write_text(env_file.read_text().replace(":18080/rpc", f":{port}/rpc"))
    ctl = f"{REPO}/demo/botctl --app-dir {app} --port {port}"
    inv = workdir / "inv.yaml"
    inv.write_text(
        json.dumps(
            {
                "hosts": {"local": {"connection": "local"}},
                "groups": {"app": ["local"]},
                "vars": {
                    "app_dir": str(app),
                    "log_dir": str(app / "logs"),
                    "health_url": f"http://127.0.0.1:{port}/health",
                    "service_ctl": ctl,
                    "service_name": "polymarket-bot",
                    "disk_max_percent": 99,
                    "mem_max_percent": 99,
                    "log_errors_max": 0,
                    "backup_dir": str(app / "backups"),
                    "backup_gpg_recipient": "",
                    "package_dir": str(app / "updates"),
                    "env_name": "demo",
                    "bot_user": "polymarket-bot",
                    "as_bot": "",
                    "as_root": "",
                    "bot_python": "python3",
                    "pip_cmd": "python3 -m pip",
                    "vuln_scan_cmd": f"{REPO}/demo/vulnscan --python python3"
                    f" --advisories {REPO}/demo/advisories.txt",
                    "chown_cmd": 'chown -R "$(id -u):$(id -g)"',
                    "service_logs": f"cat {app}/logs/service.log",
                    "crontab": f"{REPO}/demo/crontab --dir {app}/cron",
                    "logrotate_dir": str(app / "logrotate.d"),
                    "runbook_dir": str(REPO),
                    "cert_path": str(app / "security/certs/bot.pem"),
                    "cert_warn_days": 30,
                    "audit_status_cmd": "",
                    "page_url": "",
                    "page_routing_keys": {},
                    "page_ack_url": "",
                    "slack_webhook_url": "",
                    "certbot_cmd": "",
                },
            }
        )
    )
    env = {**os.environ, "BOT_PORT": str(port)}
    monkeypatch.setenv("BOT_PORT", str(port))
    d = Demo(app, inv, ctl, env)
    d.sh(f"{ctl} start").check_returncode()
    try:
        yield d
    finally:
        d.sh(f"{ctl} stop")


@pytest.fixture
def demo_ssh(demo: Demo, sshd: Any) -> Demo:
    """The demo target reached through sshd: host `app1` of the application group the runbooks
    target, with the same variables."""
    data = json.loads(demo.inv.read_text())
    data["ssh"] = {
        "known_hosts": str(sshd.known_hosts),
        "key": str(sshd.client_key),
        "connect_timeout": "5s",
    }
    data["hosts"] = {"app1": {"address": "127.0.0.1", "port": sshd.port, "user": sshd.user}}
    data["groups"] = {"app": ["app1"]}
    demo.inv.write_text(json.dumps(data))
    return demo
