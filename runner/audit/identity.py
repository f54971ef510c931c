"""Who vouched for what, proven with the person's own SSH key (OpenSSH signatures, as git uses).

A person's identity is a principal of an allowed-signers file (ssh-keygen(1), ALLOWED SIGNERS):
`alice@example.com namespaces="runbook" ssh-ed25519 AAAA...`. Approvals, sign-offs,
confirmations, reviews and resolutions are dicts of fields naming what they vouch for (`vouches`:
the kind; the plan hash, item and evidence hash, run and step...) and the manifestation (`by`,
`at` in UTC, `meaning`). `vouch` adds `sshsig`: an `ssh-keygen -Y sign -n runbook` signature over
the canonical JSON of every other field, so changing any of them breaks it. `check` verifies it
with `ssh-keygen -Y verify` as the principal in `by`, at the time in `at` (a key that expired
since still proves what it signed while it was valid). `at` is the signer's own claim: where a
signature is counted for something (a plan's approvals, planuse.dating), it is bounded by times
the signer does not choose.

The key is `--ssh-key FILE` or RUNBOOK_SSH_KEY: a private key file, or a public key (`.pub`)
whose private half sits in ssh-agent (SSH_AUTH_SOCK), exactly as `ssh-keygen -Y sign -f` takes it.
A record without `sshsig` is a typed name: accepted where policy allows, shown as "unsigned".
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.audit.journal import RESERVED, canonical, now
from runner.errors import UsageError

if TYPE_CHECKING:
    from subprocess import CompletedProcess

NAMESPACE = "runbook"
SIG = "sshsig"
_PROBE = b"runbook: which principal holds this key?\n"


@dataclass(frozen=True)
class Checked:
    """The verdict on one vouching record: `signed` False is a typed name (not a failure)."""

    by: str
    signed: bool
    ok: bool
    reason: str = ""

    @property
    def label(self) -> str:
        if not self.signed:
            return f"{self.by} (unsigned)"
        return f"{self.by} (signed)" if self.ok else f"{self.by} (BAD SIGNATURE: {self.reason})"


def label(fields: dict[str, Any]) -> str:
    """`alice@example.com (signed)` or `bob (unsigned)`: what a listing shows without checking
    (`audit verify` checks)."""
    return f"{fields.get('by')} ({'signed' if SIG in fields else 'unsigned'})"


def key_source(given: str | None) -> str | None:
    return given or os.environ.get("RUNBOOK_SSH_KEY") or None


SHOWN = "signed"  # the flag exports show beside a record (`checklist status --format json`)


def statement(fields: dict[str, Any]) -> bytes:
    """The exact bytes signed: every field but the signature itself, a journal's envelope and
    the `signed` flag of an export (so an exported sign-off verifies as it stands)."""
    left_out = {SIG, SHOWN}
    return canonical({k: v for k, v in fields.items() if k not in left_out | RESERVED})


def body(record: dict[str, Any]) -> dict[str, Any]:
    """A journal record without its envelope (seq, ts, hash...): what its signer signed."""
    return {k: v for k, v in record.items() if k not in RESERVED}


def vouch(
    fields: dict[str, Any],
    *,
    key: str | None,
    allowed: Path | None,
    claimed: str | None,
    allow_unsigned: bool = True,
) -> dict[str, Any]:
    """`fields` (with `vouches` and `meaning`) plus `by`, `at` and, given a key, `sshsig`.

    With a key, `by` is the key's principal in `allowed` (`claimed`, if given, must be one of
    them): a key not in the file is refused. Without one, `by` is the name typed (or the OS user),
    refused unless the policy allows unsigned records.
    """
    out = dict(fields)
    out["at"] = out.get("at") or now()
    key = key_source(key)
    if key is None:
        if not allow_unsigned:
            raise UsageError(
                f"{fields.get('vouches')}: the policy requires a signature: give --ssh-key FILE "
                "(or RUNBOOK_SSH_KEY) with a key of the allowed signers"
            )
        if not claimed:
            from runner.audit.journal import current_actor

            claimed = current_actor()["user"]
        out["by"] = claimed
        return out
    if allowed is None:
        raise UsageError(
            "signing needs an allowed-signers file: `allowed_signers:` in the policy, "
            "or RUNBOOK_ALLOWED_SIGNERS"
        )
    out["by"] = principal_of(key, allowed, claimed)
    out[SIG] = sign(key, statement(out))
    verdict = check(out, allowed)
    if not verdict.ok:  # never record a signature that the verifier would reject
        raise UsageError(f"the signature by {out['by']} does not verify: {verdict.reason}")
    return out


def principal_of(key: str, allowed: Path, claimed: str | None) -> str:
    """The principal the key belongs to, found as `git` does: sign, then `-Y find-principals`."""
    with _sigfile(sign(key, _PROBE)) as sig:
        r = _keygen(["-Y", "find-principals", "-s", str(sig), "-f", str(allowed), "-n", NAMESPACE])
    found = r.stdout.decode().split() if r.returncode == 0 else []
    if not found:
        raise UsageError(f"the key {key} is not in the allowed signers {allowed} (refused)")
    if claimed:
        if claimed not in found:
            raise UsageError(f"the key {key} belongs to {', '.join(found)}, not to {claimed}")
        return claimed
    if len(found) > 1:
        raise UsageError(f"the key {key} is several principals ({', '.join(found)}): give --by")
    return found[0]


def sign(key: str, message: bytes) -> str:
    """`ssh-keygen -Y sign -n runbook -f KEY` over `message`; the armored signature."""
    if not Path(key).is_file():
        raise UsageError(f"no SSH key at {key}")
    r = _keygen(["-Y", "sign", "-q", "-n", NAMESPACE, "-f", key], message)
    if r.returncode != 0 or b"BEGIN SSH SIGNATURE" not in r.stdout:
        why = r.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError(f"cannot sign with {key}: {why[-1] if why else 'ssh-keygen failed'}")
    return r.stdout.decode()


def check(fields: dict[str, Any], allowed: Path | None) -> Checked:
    """Verify a vouching dict's signature as its `by`, at its `at`; unsigned is not a failure."""
    by = str(fields.get("by"))
    sig = fields.get(SIG)
    if sig is None:
        return Checked(by, signed=False, ok=True)
    if allowed is None:
        return Checked(by, True, False, "no allowed-signers file to check it against")
    if not isinstance(sig, str):
        return Checked(by, True, False, "malformed signature")
    args = ["-Y", "verify", "-f", str(allowed), "-I", by, "-n", NAMESPACE]
    when = _verify_time(fields.get("at"))
    if when:
        args += ["-O", f"verify-time={when}"]
    with _sigfile(sig) as path:
        r = _keygen([*args, "-s", str(path)], statement(fields))
    if r.returncode != 0:
        return Checked(by, True, False, f"not a valid signature by {by} over this record")
    return Checked(by, True, True)


def instant(at: object) -> dt.datetime | None:
    """`2026-11-29T17:46:26.123456Z` (or without the fraction) as a UTC time; None if it is
    not one. Times are compared as times: as text, `...:25.5Z` sorts before `...:25Z`."""
    if not isinstance(at, str):
        return None
    try:
        return dt.datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(dt.timezone.utc)
    except ValueError:
        return None


def _verify_time(at: object) -> str | None:
    """`2026-11-29T17:46:26.123456Z` -> `20261129174626Z` (ssh-keygen's verify-time format)."""
    t = instant(at)
    return t.strftime("%Y%m%d%H%M%SZ") if t else None


def _keygen(args: list[str], stdin: bytes = b"") -> CompletedProcess[bytes]:
    import subprocess  # imported when a signature is made or checked, not at every start

    try:
        return subprocess.run(
            ["ssh-keygen", *args], input=stdin, capture_output=True, timeout=60, check=False
        )
    except FileNotFoundError:
        raise UsageError("ssh-keygen (OpenSSH) is needed for signatures") from None
    except subprocess.TimeoutExpired:
        raise UsageError("ssh-keygen did not answer (a passphrase prompt?)") from None


@contextmanager
def _sigfile(sig: str) -> Iterator[Path]:
    """ssh-keygen reads a signature only from a file: a private one, removed afterwards."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="runbook-sig-") as d:
        path = Path(d) / "sig"
        path.write_text(sig if sig.endswith("\n") else sig + "\n", encoding="ascii")
        yield path
