#!/usr/bin/env python3
"""Create the local demo target: the seed's deployment layout of the Polymarket copy bot.

    python3 demo/setup.py [--root .demo] [--reset]

Lays out <root>/polymarket-copy-bot/ the way the seed runbook's "Directory Structure" describes
(scripts/, logs/, data/, backups/, security/) plus a `releases/<version>/` directory with a
`current` symlink, which the update runbooks switch, and what the seed runbooks need:

- `updates/1.1.0/`: the update package the rolling-update runbook deploys (write `unhealthy` into
  its `HEALTH` file to get a release that fails its post-update verification);
- `config/settings.py`: the seed's `from config.settings import settings` with
  `settings.validate_critical_settings()`, checking `.env`;
- `requirements.txt` (no third-party packages: `pip install -r` has nothing to fetch);
- `security/certs/bot.pem`: a self-signed certificate, valid 90 days (made with `openssl`, else
  python's `cryptography`; left out when neither is there);
- `logs/trade_2026-09-01.log.gz`: a rotated log dated long ago, for the 30-day clean-up. Everything is deterministic (fixed dates and a
seeded random generator), so tests can rely on the contents.

Idempotent: what exists is left alone, so state a test put there (an injected ERROR line, a
switched `current` link) survives a second run. `--reset` wipes the app directory and recreates it.
Stdlib only; Python 3.10+.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

APP_NAME = "polymarket-copy-bot"
RELEASE = "1.0.0"
UPDATE = "1.1.0"
TRADE_COUNT = 50

DIRS = (
    "scripts",
    "logs",
    "data",
    "backups",
    "security",
    "security/certs",
    "releases",
    f"releases/{RELEASE}",
    "run",
    "config",
    "updates",
    f"updates/{UPDATE}",
)

ENV_FILE = """\
# Polymarket copy bot: demo settings. No secrets here: the demo never talks to a real chain.
ENVIRONMENT=demo
LOG_LEVEL=INFO
RPC_URL=http://127.0.0.1:8545
RPC_FALLBACK_URL=http://127.0.0.1:18080/rpc
CHAIN_ID=137
HEALTH_HOST=127.0.0.1
HEALTH_PORT=18080
TARGET_WALLETS=0x1111111111111111111111111111111111111111,0x2222222222222222222222222222222222222222
COPY_RATIO=0.10
MAX_POSITION_USD=250
MAX_DAILY_LOSS_USD=100
CIRCUIT_BREAKER_ENABLED=true
TRADE_DB_PATH=data/trade_history.db
"""

MAIN_PY = '''\
"""Placeholder for the bot's entry point; the demo's running service is demo/service.py."""

VERSION = "{version}"

if __name__ == "__main__":
    print(f"polymarket-copy-bot {{VERSION}} (demo placeholder)")
'''

SCRIPTS = {
    # The seed's maintenance scripts; the runbooks replace them, so here they only say so.
    name: f"#!/bin/sh\necho '{name}: replaced by runbooks/ (demo placeholder)'\n"
    for name in (
        "update_procedures.sh",
        "health_monitor.sh",
        "automated_maintenance.sh",
        "incident_response.sh",
    )
}

LOG_DAYS = ("2026-11-23", "2026-11-24")
OLD_LOG = "logs/trade_2026-09-01.log.gz"

REQUIREMENTS = """\
# The demo bot needs nothing beyond the standard library; production pins its packages here.
"""

SETTINGS_PY = '''\
"""The seed's `config.settings`: loads <app_dir>/.env and validates the critical settings."""

from pathlib import Path

REQUIRED = ("ENVIRONMENT", "RPC_URL", "CHAIN_ID", "HEALTH_PORT", "COPY_RATIO", "MAX_POSITION_USD")


class Settings:
    def __init__(self, path):
        self.path = path
        self.values = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                key, sep, value = line.partition("=")
                if not sep:
                    raise ValueError("%s: not KEY=VALUE: %r" % (path, line))
                self.values[key.strip()] = value.strip()

    def validate_critical_settings(self):
        missing = [k for k in REQUIRED if not self.values.get(k)]
        if missing:
            raise ValueError("missing settings: " + ", ".join(missing))
        v = self.values
        if not v["RPC_URL"].startswith(("http://", "https://")):
            raise ValueError("RPC_URL must be an http(s) URL: %r" % v["RPC_URL"])
        for key in ("CHAIN_ID", "HEALTH_PORT"):
            if not v[key].isdigit():
                raise ValueError("%s must be an integer: %r" % (key, v[key]))
        ratio = float(v["COPY_RATIO"])
        if not 0 < ratio <= 1:
            raise ValueError("COPY_RATIO must be in (0, 1]: %r" % v["COPY_RATIO"])
        if float(v["MAX_POSITION_USD"]) <= 0:
            raise ValueError("MAX_POSITION_USD must be positive")
        return True


settings = Settings(Path(__file__).resolve().parent.parent / ".env")
'''


def log_lines(day: str, rng: random.Random) -> list[str]:
    """A day of INFO lines in the bot's format, with one WARNING on the last day; no ERROR."""
    fmt = "{day} {hh:02d}:{mm:02d}:{ss:02d},{ms:03d} - polymarket_bot.{mod} - {level} - {msg}"
    lines = []
    for i in range(24):
        mod, msg = rng.choice(
            [
                ("monitor", "Polled 2 target wallets: 0 new transactions"),
                ("monitor", "Polled 2 target wallets: 1 new transaction"),
                ("trader", "Copied BUY 12.50 YES @ 0.61 on market 0x3f2a...c01d"),
                ("trader", "Copied SELL 8.00 NO @ 0.44 on market 0x91be...7a55"),
                ("rpc", "eth_blockNumber ok (latency 84 ms)"),
                ("risk", "Daily P&L +3.20 USD, exposure 140.00/250.00 USD"),
                ("health", "Health check: healthy (0 issues, 0 warnings)"),
            ]
        )
        lines.append(
            fmt.format(
                day=day,
                hh=i,
                mm=rng.randrange(60),
                ss=rng.randrange(60),
                ms=rng.randrange(1000),
                mod=mod,
                level="INFO",
                msg=msg,
            )
        )
    if day == LOG_DAYS[-1]:
        lines.append(
            f"{day} 16:02:11,402 - polymarket_bot.rpc - WARNING - "
            "RPC latency 2150 ms above 2000 ms threshold; staying on primary endpoint"
        )
    return sorted(lines)  # timestamps lead each line, so this is chronological


def create_db(path: Path, rng: random.Random) -> None:
    """A real SQLite database: a `trades` table with TRADE_COUNT rows."""
    tmp = path.with_suffix(".db.tmp")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    try:
        con.executescript(
            """
            CREATE TABLE trades (
                id          INTEGER PRIMARY KEY,
                executed_at TEXT    NOT NULL,
                source      TEXT    NOT NULL,
                market_id   TEXT    NOT NULL,
                side        TEXT    NOT NULL CHECK (side IN ('BUY', 'SELL')),
                outcome     TEXT    NOT NULL CHECK (outcome IN ('YES', 'NO')),
                price       REAL    NOT NULL,
                size        REAL    NOT NULL,
                tx_hash     TEXT    NOT NULL UNIQUE,
                status      TEXT    NOT NULL
            );
            CREATE INDEX trades_executed_at ON trades (executed_at);
            """
        )
        rows = []
        for i in range(1, TRADE_COUNT + 1):
            day = LOG_DAYS[0] if i <= TRADE_COUNT // 2 else LOG_DAYS[1]
            rows.append(
                (
                    i,
                    f"{day}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
                    rng.choice(["0x1111...1111", "0x2222...2222"]),
                    "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(16)),
                    rng.choice(["BUY", "SELL"]),
                    rng.choice(["YES", "NO"]),
                    round(rng.uniform(0.05, 0.95), 2),
                    round(rng.uniform(1, 50), 2),
                    "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(64)),
                    "filled" if rng.random() > 0.1 else "cancelled",
                )
            )
        con.executemany("INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.commit()
    finally:
        con.close()
    tmp.replace(path)


def write_old_log(path: Path) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("2026-09-01 00:00:00,000 - polymarket_bot.monitor - INFO - rotated long ago\n")


def make_cert(path: Path) -> None:
    """A self-signed certificate for localhost, valid 90 days; nothing if no tool can make one."""
    if shutil.which("openssl"):
        key = path.with_suffix(".key")
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "90",
                "-subj",
                "/CN=localhost",
                "-keyout",
                str(key),
                "-out",
                str(path),
            ],
            check=True,
            capture_output=True,
        )
        key.chmod(0o600)
        return
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return
    import datetime

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=90))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


class Builder:
    def __init__(self, app: Path) -> None:
        self.app = app
        self.created: list[str] = []
        self.kept: list[str] = []

    def _note(self, rel: str, made: bool) -> None:
        (self.created if made else self.kept).append(rel)

    def dir(self, rel: str) -> None:
        path = self.app / rel
        made = not path.is_dir()
        path.mkdir(parents=True, exist_ok=True)
        self._note(rel + "/", made)

    def file(self, rel: str, write: Callable[[Path], None], mode: int = 0o644) -> None:
        path = self.app / rel
        if path.exists():
            self._note(rel, False)
            return
        write(path)
        if not path.exists():  # the writer could not make it (no tool): not an error
            return
        path.chmod(mode)
        self._note(rel, True)

    def text(self, rel: str, content: str, mode: int = 0o644) -> None:
        def write(path: Path) -> None:
            path.write_text(content, encoding="utf-8")

        self.file(rel, write, mode)

    def symlink(self, rel: str, target: str) -> None:
        path = self.app / rel
        if path.is_symlink() or path.exists():
            self._note(f"{rel} -> {os.readlink(path) if path.is_symlink() else '?'}", False)
            return
        path.symlink_to(target)
        self._note(f"{rel} -> {target}", True)


def build(app: Path) -> Builder:
    b = Builder(app)
    app.mkdir(parents=True, exist_ok=True)
    for d in DIRS:
        b.dir(d)
    b.text(".env", ENV_FILE, mode=0o600)
    b.text("main.py", MAIN_PY.format(version=RELEASE))
    b.text(f"releases/{RELEASE}/main.py", MAIN_PY.format(version=RELEASE))
    b.text(f"releases/{RELEASE}/VERSION", RELEASE + "\n")
    b.symlink("current", f"releases/{RELEASE}")
    b.text(f"updates/{UPDATE}/main.py", MAIN_PY.format(version=UPDATE))
    b.text(f"updates/{UPDATE}/VERSION", UPDATE + "\n")
    b.text("requirements.txt", REQUIREMENTS)
    b.text("config/__init__.py", "")
    b.text("config/settings.py", SETTINGS_PY)
    b.file("security/certs/bot.pem", make_cert)
    for name, body in SCRIPTS.items():
        b.text(f"scripts/{name}", body, mode=0o755)
    b.text("security/README", "Security monitoring reports land here (demo: empty).\n")
    # One seeded generator per artifact: the same bytes every time, whichever ones already exist.
    for day in LOG_DAYS:
        lines = log_lines(day, random.Random(f"log-{day}"))
        b.text(f"logs/trade_{day}.log", "\n".join(lines) + "\n")
    b.file("data/trade_history.db", lambda p: create_db(p, random.Random("trades")))
    b.file(OLD_LOG, write_old_log)
    old = app / OLD_LOG
    os.utime(old, (1756684800, 1756684800))  # 2025-09-01: older than any 30-day window
    return b


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".demo", help="where to create it (default: .demo)")
    parser.add_argument("--reset", action="store_true", help="wipe the app directory first")
    args = parser.parse_args(argv)

    app = Path(args.root) / APP_NAME
    pid_file = app / "run" / "bot.pid"
    if args.reset and app.exists():
        if pid_file.exists():
            print(
                f"warning: {pid_file} exists; stop the service first (demo/botctl stop)",
                file=sys.stderr,
            )
        shutil.rmtree(app)
        print(f"reset: removed {app}")

    b = build(app)
    for rel in b.created:
        print(f"created  {app}/{rel}")
    if b.kept:
        print(f"unchanged: {len(b.kept)} existing entries left as they were")
    print(f"demo target ready: {app} (release {RELEASE}); start it with demo/botctl start")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
