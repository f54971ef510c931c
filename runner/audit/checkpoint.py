"""Anchors: the ledger's signed head, kept where the state dir's owner cannot undo it.

The ledger is a hash chain whose entries are signed one by one; whoever can rewrite
`ledger.jsonl` can still drop its last entries (a chain cut short is still a chain). A
checkpoint records its length and last hash at a moment (`audit checkpoint -o FILE`), signed
with the signing key (Ed25519, `--signing-key`) and/or the person's SSH key (`--ssh-key`).
`audit verify --checkpoint FILE` then proves that every entry it covered is still there, unchanged.
"""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path
from typing import Any

from runner.audit import identity, policy, signing
from runner.audit.journal import canonical, read_records
from runner.audit.ledger import ledger_path
from runner.errors import UsageError

FORMAT = "runbook-checkpoint/1"
_ED25519 = ("key_id", "public_key", "signature")


def make(state_dir: Path, *, signing_key: str | None, ssh_key: str | None) -> dict[str, Any]:
    """The checkpoint of the ledger as it is now; refused if the ledger does not verify."""
    from runner.audit.chain import verify_run

    path = ledger_path(state_dir)
    if not path.exists():
        raise UsageError(f"no ledger at {path}: nothing to anchor yet")
    lv = verify_run(path, keep=True)
    if not lv.ok:
        raise UsageError(f"the ledger does not verify, refusing to anchor it: {lv.line()}")
    fields = {
        "format": FORMAT,
        "vouches": "ledger.checkpoint",
        "meaning": "anchored",
        "ledger": str(path.resolve()),
        "host": socket.gethostname(),
        "records": lv.records,
        "last_hash": lv.events[-1]["hash"] if lv.events else "0" * 64,
    }
    rules = policy.load()
    doc = (
        rules.vouch(fields, key=ssh_key, claimed=None)
        if identity.key_source(ssh_key)
        else identity.vouch(fields, key=None, allowed=None, claimed=None)
    )
    signer = signing.load_signer(signing_key)
    if signer is not None:
        doc.update(key_id=signer.key_id, public_key=signer.public_b64)
        doc["signature"] = signer.sign(_signed_text(doc))
    return doc


def write(doc: dict[str, Any], out: Path) -> None:
    from runner.safefs import write_file

    write_file(out, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode(), 0o644)


def check(state_dir: Path, file: str, public_key: str | None = None) -> list[str]:
    """What does not hold: the checkpoint's own signatures, then the ledger against it."""
    try:
        doc = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{file}: not a checkpoint ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UsageError(f"{file}: not a checkpoint of format {FORMAT}")
    problems = [f"checkpoint {file}: {p}" for p in _signature_problems(doc, public_key)]
    n, want = doc.get("records"), doc.get("last_hash")
    if not isinstance(n, int) or not isinstance(want, str):
        return [*problems, f"checkpoint {file}: malformed (records, last_hash)"]
    ledger = ledger_path(state_dir)
    lines = list(read_records(ledger)) if ledger.exists() else []
    hashes = [r.record.get("hash") if r.record else None for r in lines]
    if n == 0:
        return problems
    if len(hashes) < n:
        problems.append(
            f"checkpoint {file} of {doc.get('at')}: the ledger has {len(hashes)} records, the "
            f"checkpoint covered {n}: entries {len(hashes) + 1}-{n} were dropped"
        )
    elif hashes[n - 1] != want:
        problems.append(
            f"checkpoint {file} of {doc.get('at')}: ledger record {n} differs from the "
            "checkpoint's (the ledger was rewritten)"
        )
    return problems


def _signed_text(doc: dict[str, Any]) -> str:
    """What the Ed25519 signature signs: the checkpoint without that signature's own fields."""
    return canonical({k: v for k, v in doc.items() if k not in _ED25519}).decode()


def _signature_problems(doc: dict[str, Any], public_key: str | None) -> list[str]:
    out = []
    if "signature" in doc:
        if not signing.valid(str(doc.get("public_key")), _signed_text(doc), str(doc["signature"])):
            out.append("invalid signature (the checkpoint was edited, or forged)")
        elif public_key and base64.b64decode(str(doc["public_key"])) != signing.load_public(
            public_key
        ):
            out.append(f"signed by another key ({doc.get('key_id')})")
    elif public_key:
        out.append("not signed with a signing key, but one was expected")
    if identity.SIG in doc:
        verdict = identity.check(
            {k: v for k, v in doc.items() if k not in _ED25519}, policy.load().allowed
        )
        if not verdict.ok:
            out.append(f"the signature of {verdict.by}: {verdict.reason}")
    return out
