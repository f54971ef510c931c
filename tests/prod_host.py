"""A production-shaped host over the loopback sshd (a pytest plugin, like sshd_fixture).

Built the way the seed deploys the bot, with real Debian tools: a dedicated unprivileged user
owning /home/<user>/polymarket-copy-bot (demo/setup.py's layout), which the runner logs in as;
sudo rules (NOPASSWD, only these commands) for the service manager, `crontab -u <user>`, the
logrotate file and `chown` of the deployment; the real `crontab` (Debian's cron), `logrotate`,
`sqlite3`, `gpg` (a backup key pair in the user's keyring) and `openssl`. The service is
demo/service.py behind a `systemctl` stand-in (no systemd in a container) that sudo runs as root
and that starts the bot as the user. The inventory is inventories/production.example.yaml with
only the host's address and the variables changed.

Each use makes a fresh user with a unique name, and tears everything down (service, the user's
processes, crontab, sudoers and logrotate files, the user and its home). A user left by a run
that was killed is swept by the next one: its comment names the pid that made it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sshd_fixture import SSHServer

from runner.cli import main

REPO = Path(__file__).resolve().parent.parent
PRODUCTION = REPO / "inventories" / "production.example.yaml"
COMMENT = "runbook prod_host test pid "
PYTHON = (
    "/usr/bin/python3"  # the host's own (Debian's), not the runner's pyenv the user cannot read
)
TOOLS = ("useradd", "userdel", "sudo", "crontab", "logrotate", "gpg", "sqlite3", "openssl")

SYSTEMCTL = """#!/bin/sh
# systemctl for one unit (no systemd in a container): sudo runs this as root, the bot runs as
# {user}. Accepts what the runbooks send: start|stop|restart|reload|status|show ... polymarket-bot
exec runuser -u {user} -- env PYTHON={python} {bin}/botctl --app-dir {app} --port {port} "$@"
"""

SUDOERS = """\
{user} ALL=(root) NOPASSWD: {bin}/systemctl *
{user} ALL=(root) NOPASSWD: /usr/bin/crontab -u {user} *
{user} ALL=(root) NOPASSWD: /usr/bin/tee /etc/logrotate.d/{unit}
{user} ALL=(root) NOPASSWD: /usr/sbin/logrotate -d /etc/logrotate.d/{unit}
{user} ALL=(root) NOPASSWD: /usr/bin/chown -R {user}\\:{user} {app}
"""


@dataclass
class ProdHost:
    user: str
    home: Path
    app: Path
    port: int
    inv: Path
    unit: str  # service_name: unique, so parallel runs never share /etc/logrotate.d/<unit>
    gpg_recipient: str

    def run(self, name: str, *params: str) -> int:
        args = ["run", str(REPO / "runbooks" / f"{name}.yaml"), "-i", str(self.inv), "--yes"]
        for p in params:
            args += ["-p", p]
        return main(args)

    def set_vars(self, **values: Any) -> None:
        """Change variables of this host's inventory (as an operator would edit theirs)."""
        data = yaml.safe_load(self.inv.read_text())
        data["vars"].update(values)
        self.inv.write_text(yaml.safe_dump(data, sort_keys=False))

    def events(self) -> list[dict[str, Any]]:
        """The records of every run so far, oldest first."""
        logs = sorted((self.inv.parent / "state" / "runs").glob("*.jsonl"))
        return [json.loads(line) for log in logs for line in log.read_text().splitlines()]

    def printed(self) -> str:
        """Everything the runs' steps and checks printed (the audit log's heads and tails)."""
        out = []
        for e in self.events():
            for stream in ("stdout", "stderr"):
                if isinstance(e.get(stream), dict):
                    out += [e[stream].get("head", ""), e[stream].get("tail", "")]
        return "\n".join(out)

    def sh(self, cmd: str, *, check: bool = False) -> subprocess.CompletedProcess[str]:
        """A command on the host as its user (what an operator logged in there would run)."""
        done = subprocess.run(
            # a login environment, as SSH gives the runner's commands (not pytest's XDG_* dirs)
            ["runuser", "-l", self.user, "-s", "/bin/sh", "-c", cmd],
            cwd=self.home,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{cmd}: exit {done.returncode}\n{done.stdout}{done.stderr}")
        return done

    def crontab(self) -> str:
        done = subprocess.run(
            ["crontab", "-u", self.user, "-l"], check=False, capture_output=True, text=True
        )
        return done.stdout if done.returncode == 0 else ""

    def health(self) -> dict[str, Any]:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as r:
                return dict(json.load(r))
        except urllib.error.HTTPError as err:
            return dict(json.load(err))
        except OSError:
            return {"status": "down"}

    @property
    def db(self) -> Path:
        return self.app / "data" / "trade_history.db"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pids_of(uid: int) -> list[int]:
    pids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                if line.startswith("Uid:"):
                    if int(line.split()[1]) == uid:
                        pids.append(int(status.parent.name))
                    break
    return pids


def _remove(user: str) -> None:
    """Everything the fixture made for `user`; each part tolerates being gone already."""
    try:
        import pwd

        entry = pwd.getpwnam(user)
    except KeyError:
        entry = None
    if entry is not None:
        # the service and whatever else runs as this user: its processes, one by one, by id
        for pid in _pids_of(entry.pw_uid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    subprocess.run(["crontab", "-u", user, "-r"], capture_output=True, check=False)
    for path in (Path("/etc/sudoers.d") / user, Path("/etc/logrotate.d") / user):
        path.unlink(missing_ok=True)
    shutil.rmtree(Path("/opt/runbook-test") / user, ignore_errors=True)
    with contextlib.suppress(OSError):  # only when no other run still uses it
        Path("/opt/runbook-test").rmdir()
    if entry is not None:
        subprocess.run(["userdel", "-r", "-f", user], capture_output=True, check=False)


def _sweep() -> None:
    """Users left by a test run that was killed before its teardown."""
    import pwd

    for entry in pwd.getpwall():
        if entry.pw_gecos.startswith(COMMENT):
            pid = int(entry.pw_gecos[len(COMMENT) :] or 0)
            if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
                _remove(entry.pw_name)


def _require() -> None:
    if os.geteuid() != 0:
        pytest.skip("the production-shaped host creates a user: needs root")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    missing += [PYTHON] if not Path(PYTHON).exists() else []
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (make test installs them)")


def _inventory(path: Path, server: SSHServer, h: ProdHost, python: str) -> None:
    """production.example.yaml: the host's address, and the variables' values for this host."""
    data = yaml.safe_load(PRODUCTION.read_text())
    data["ssh"] = {
        "known_hosts": str(server.known_hosts),
        "key": str(server.client_key),
        "connect_timeout": "5s",
    }
    data["hosts"]["app1"].update(address="127.0.0.1", port=server.port, user=h.user)
    del data["hosts"]["app1"]["key"]
    app, bin_ = str(h.app), f"/opt/runbook-test/{h.user}"
    values = {
        "app_dir": app,
        "log_dir": f"{app}/logs",
        "health_url": f"http://localhost:{h.port}/health",
        "service_ctl": f"sudo -n {bin_}/systemctl",
        "service_name": h.unit,
        "disk_max_percent": 99,
        "mem_max_percent": 99,
        "backup_dir": f"{app}/backups",
        "backup_gpg_recipient": h.gpg_recipient,
        "package_dir": f"{app}/updates",
        "bot_user": h.user,
        "bot_python": python,
        "pip_cmd": f"{app}/venv/bin/python -m pip",
        "vuln_scan_cmd": f"{bin_}/vulnscan --python {app}/venv/bin/python --advisories"
        f" {bin_}/advisories.txt",
        "chown_cmd": f"sudo -n chown -R {h.user}:{h.user}",
        "service_logs": f"cat {app}/logs/service.log",
        "logrotate_dir": "/etc/logrotate.d",
        "runbook_dir": f"{h.home}/ops",
        "cert_path": f"{app}/security/certs/bot.pem",
        "certbot_cmd": "",
        "audit_status_cmd": "",
        "page_url": "",
        "page_routing_keys": {},
        "page_ack_url": "",
        "slack_webhook_url": "",
    }
    unknown = set(values) - set(data["vars"])
    assert not unknown, f"not variables of {PRODUCTION.name}: {unknown}"
    data["vars"].update(values)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def prod_host(workdir: Path) -> Iterator[ProdHost]:
    _require()
    _sweep()
    user = f"pmbot-{secrets.token_hex(4)}"
    home = Path("/home") / user
    subprocess.run(
        ["useradd", "-m", "-d", str(home), "-s", "/bin/sh", "-c", f"{COMMENT}{os.getpid()}", user],
        check=True,
        capture_output=True,
    )
    server = None
    try:
        # '*' instead of useradd's '!': sshd (without PAM) refuses a locked account, even by key
        subprocess.run(["usermod", "-p", "*", user], check=True, capture_output=True)
        h = ProdHost(
            user,
            home,
            home / "polymarket-copy-bot",
            _free_port(),
            workdir / "prod.yaml",
            unit=user,
            gpg_recipient=f"backup@{user}.test",
        )
        bin_ = Path("/opt/runbook-test") / user
        bin_.mkdir(parents=True)
        for name in ("botctl", "service.py", "vulnscan", "advisories.txt"):
            shutil.copy2(REPO / "demo" / name, bin_ / name)
        python = PYTHON
        (bin_ / "systemctl").write_text(
            SYSTEMCTL.format(user=user, python=python, bin=bin_, app=h.app, port=h.port)
        )
        for path in bin_.iterdir():
            path.chmod(0o755)
        bin_.chmod(0o755)
        sudoers = Path("/etc/sudoers.d") / user
        sudoers.write_text(SUDOERS.format(user=user, bin=bin_, unit=h.unit, app=h.app))
        sudoers.chmod(0o440)
        subprocess.run(["visudo", "-cf", str(sudoers)], check=True, capture_output=True)
        h.sh(f"{python} {REPO}/demo/setup.py --root {home}", check=True)
        # the fallback RPC endpoint is this host's service (demo/service.py answers /rpc)
        h.sh(f"sed -i 's|127.0.0.1:18080/rpc|localhost:{h.port}/rpc|' {h.app}/.env", check=True)
        # the bot's venv; pip comes from the host's python3-pip, installing into the venv,
        # from a local wheel directory (the host's package mirror: ~/.config/pip/pip.conf)
        h.sh(f"{python} -m venv --system-site-packages --without-pip {h.app}/venv", check=True)
        h.sh(
            f"mkdir -p ~/.config/pip ~/wheels && printf '[global]\\nno-index = true\\n"
            f"find-links = {home}/wheels\\ndisable-pip-version-check = true\\n'"
            " > ~/.config/pip/pip.conf",
            check=True,
        )
        h.sh(
            "gpg --batch --quiet --passphrase '' --quick-gen-key "
            f"{h.gpg_recipient} future-default default never",
            check=True,
        )
        # the runner's own sshd: its files must be readable by the user it logs in as
        root = Path(tempfile.mkdtemp(prefix="prod-sshd-"))
        root.chmod(0o755)
        server = SSHServer(root, count=1)
        (root / "authorized_keys").chmod(0o644)
        server.start()
        _inventory(h.inv, server, h, f"{h.app}/venv/bin/python")
        h.sh(f"sudo -n {bin_}/systemctl start {h.unit}", check=True)
        yield h
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(server.dir, ignore_errors=True)
        _remove(user)
