"""PDF through headless Chromium: the browser lays out and paginates the HTML with its print
styles, as "Save as PDF" would, so there is no second, hand-written layout to keep in step."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from runner.errors import UsageError
from runner.safefs import write_file

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# A fresh profile, nothing fetched or synced: printing a local file needs no network at all.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-pdf-header-footer",
)


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise UsageError(
        "--format pdf needs Chromium (Debian: apt-get install chromium); or write --format html "
        "and print it from a browser"
    )


def print_pdf(html: str, out: Path, *, timeout: float = 120) -> None:
    exe = browser()
    with tempfile.TemporaryDirectory(prefix="runbook-report-") as tmp:
        page, pdf = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        page.write_text(html, encoding="utf-8")
        cmd = [
            exe,
            *FLAGS,
            f"--user-data-dir={tmp}/profile",
            # into our own private dir: Chromium would follow a symlink planted at `out`
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise UsageError(f"Chromium did not print the report within {timeout:.0f}s") from None
        if done.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
            tail = (done.stderr or "").strip().splitlines()[-3:]
            raise UsageError(
                f"Chromium could not print the report (exit {done.returncode}): {' / '.join(tail)}"
            )
        write_file(out, pdf.read_bytes(), 0o644)
