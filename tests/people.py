"""Real people for identity tests: ssh-keygen keys for alice, bob and carol in an
allowed-signers file, carol's held only by a real ssh-agent (signing through her .pub), and a
stranger whose key is not in the file."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

NAMES = ("alice", "bob", "carol")


@dataclass(frozen=True)
class People:
    dir: Path
    allowed: Path

    def key(self, name: str) -> str:
        """The file to give --ssh-key: carol's is her public key (the agent holds the private)."""
        return str(self.dir / (f"{name}.pub" if name == "carol" else name))

    @staticmethod
    def principal(name: str) -> str:
        return f"{name}@example.com"


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
    )


@pytest.fixture
def people(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[People]:
    d = tmp_path_factory.mktemp("people")
    lines = []
    for name in (*NAMES, "stranger"):
        _keygen(d / name)
        if name != "stranger":
            pub = (d / f"{name}.pub").read_text().strip()
            lines.append(f'{People.principal(name)} namespaces="runbook" {pub}')
    allowed = d / "allowed_signers"
    allowed.write_text("\n".join(lines) + "\n")
    out = subprocess.run(["ssh-agent", "-s"], capture_output=True, text=True, check=True).stdout
    env = dict(part.split("=", 1) for part in out.replace(";", "\n").split() if "=" in part)
    pid = int(env["SSH_AGENT_PID"])
    try:
        monkeypatch.setenv("SSH_AUTH_SOCK", env["SSH_AUTH_SOCK"])
        subprocess.run(["ssh-add", "-q", str(d / "carol")], check=True, capture_output=True)
        (d / "carol").unlink()  # only the agent can sign as carol now
        yield People(d, allowed)
    finally:
        os.kill(pid, signal.SIGTERM)
