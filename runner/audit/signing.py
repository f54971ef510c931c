"""Ed25519 keys for signing closing records and ledger entries (`cryptography`, via asyncssh).

A hash chain alone is not enough: whoever can write the file can recompute it. A signature over
each run's closing hash, with a key the writer of the log does not hold, is.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from runner.errors import UsageError


@dataclass(frozen=True)
class Signer:
    private: object  # cryptography Ed25519PrivateKey
    public_b64: str
    key_id: str

    def sign(self, message: str) -> str:
        return base64.b64encode(self.private.sign(message.encode())).decode()  # type: ignore[attr-defined]


def key_id(public_raw: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(public_raw).digest()).decode().rstrip("=")


def keygen(prefix: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from runner.safefs import write_file

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        # only ever a new file: not one (or a symlink) someone else put there first
        fd = os.open(prefix, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise UsageError(
            f"{prefix}: {exc.strerror or exc}; a key is written only as a new file"
        ) from None
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub_path = prefix.with_name(prefix.name + ".pub")
    write_file(pub_path, pub, 0o644)  # whatever the umask
    return prefix, pub_path


def load_signer(source: str | None) -> Signer | None:
    """From --signing-key FILE, else RUNBOOK_SIGNING_KEY (a file path, or the PEM itself)."""
    source = source or os.environ.get("RUNBOOK_SIGNING_KEY")
    if not source:
        return None
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        data = (
            source.encode()
            if source.lstrip().startswith("-----BEGIN")
            else Path(source).read_bytes()
        )
        key = serialization.load_pem_private_key(data, password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"cannot load the signing key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(
            "the signing key is not an Ed25519 private key (make one with `runbook audit keygen`)"
        )
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return Signer(key, base64.b64encode(raw).decode(), key_id(raw))


def load_public(path: str) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot load the public key {path}: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path} is not an Ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def valid(public_b64: str, message: str, signature_b64: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64)).verify(
            base64.b64decode(signature_b64), message.encode()
        )
    except (InvalidSignature, ValueError):
        return False
    return True
