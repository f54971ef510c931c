"""The repository's policy (`policy.yaml`, schemas/policy.schema.json): who must approve which
runbooks and sign which checklist items, with keys from which allowed-signers file.

Found at RUNBOOK_POLICY, else `./policy.yaml`; without one, names are claims as before (every
record still says whether it was signed). With one, approvals, sign-offs, confirmations and
reviews need an SSH signature unless `allow_unsigned: true`, and the rules below apply.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import InvalidInput, UsageError

if TYPE_CHECKING:
    from runner.audit.identity import Checked

DEFAULT_EXPIRY = "24h"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Rule:
    """`count` signed approvals (or sign-offs) from principals of the groups `groups`."""

    match: str
    count: int
    groups: tuple[str, ...]
    separation: bool = True

    def describe(self) -> str:
        return f"{self.count} signed from {', '.join(self.groups)}"


@dataclass(frozen=True)
class Policy:
    file: Path | None = None
    allowed: Path | None = None
    allow_unsigned: bool = True
    expires: str = DEFAULT_EXPIRY
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    runbooks: tuple[Rule, ...] = ()
    checklists: tuple[Rule, ...] = ()
    reviewers: tuple[str, ...] = ()  # groups; empty: anyone of the allowed signers

    def runbook_rule(self, runbook_id: str) -> Rule | None:
        return next((r for r in self.runbooks if fnmatch.fnmatchcase(runbook_id, r.match)), None)

    def item_rule(self, checklist: str, item: str) -> Rule | None:
        name = f"{checklist}/{item}"
        return next((r for r in self.checklists if fnmatch.fnmatchcase(name, r.match)), None)

    def members(self, groups: Iterable[str]) -> set[str]:
        return {p for g in groups for p in self.groups.get(g, ())}

    def vouch(
        self, fields: dict[str, Any], *, key: str | None, claimed: str | None
    ) -> dict[str, Any]:
        """identity.vouch under this policy's allowed signers and unsigned rule."""
        from runner.audit import identity

        return identity.vouch(
            fields,
            key=key,
            allowed=self.allowed,
            claimed=claimed,
            allow_unsigned=self.allow_unsigned,
        )

    def check(self, fields: dict[str, Any]) -> Checked:
        from runner.audit import identity

        return identity.check(fields, self.allowed)


def load(path: str | None = None) -> Policy:
    """The policy in force: `path`, RUNBOOK_POLICY, else ./policy.yaml; none is the default."""
    given = path or os.environ.get("RUNBOOK_POLICY")
    file = Path(given) if given else Path("policy.yaml")
    if not file.is_file():
        if given:
            raise UsageError(f"no policy file at {file}")
        return Policy(allowed=_env_signers())
    from runner.format import schema
    from runner.format.source import load_file

    doc = load_file(file)
    problems = schema.validate(doc, "policy")
    if problems:
        raise InvalidInput(problems)
    d: dict[str, Any] = doc.data
    groups = {g: tuple(ps) for g, ps in (d.get("groups") or {}).items()}
    unknown = [
        doc.problem((key, i, "from", j), f"unknown group '{g}' (groups: {', '.join(groups)})")
        for key in ("runbooks", "checklists")
        for i, r in enumerate(d.get(key) or [])
        for j, g in enumerate(r["from"])
        if g not in groups
    ]
    unknown += [
        doc.problem(("reviews", "from", j), f"unknown group '{g}'")
        for j, g in enumerate((d.get("reviews") or {}).get("from", []))
        if g not in groups
    ]
    if unknown:
        raise InvalidInput(unknown)
    allowed = _env_signers() or (file.parent / d["allowed_signers"])
    if not allowed.is_file():
        raise UsageError(f"{file}: no allowed-signers file at {allowed}")
    return Policy(
        file=file,
        allowed=allowed,
        allow_unsigned=bool(d.get("allow_unsigned", False)),
        expires=(d.get("plans") or {}).get("expires", DEFAULT_EXPIRY),
        groups=groups,
        runbooks=tuple(
            Rule(r["match"], r["approvals"], tuple(r["from"]), r.get("separation_of_duties", True))
            for r in d.get("runbooks") or []
        ),
        checklists=tuple(
            Rule(r["match"], r["signoffs"], tuple(r["from"])) for r in d.get("checklists") or []
        ),
        reviewers=tuple((d.get("reviews") or {}).get("from", ())),
    )


def _env_signers() -> Path | None:
    source = os.environ.get("RUNBOOK_ALLOWED_SIGNERS")
    if not source:
        return None
    if not Path(source).is_file():
        raise UsageError(f"RUNBOOK_ALLOWED_SIGNERS: no allowed-signers file at {source}")
    return Path(source)


def seconds(duration: str) -> int:
    """`24h` -> 86400; `--expires` and `plans.expires` take s, m, h or d."""
    m = re.fullmatch(r"([1-9][0-9]*)([smhd])", duration.strip())
    if not m:
        raise UsageError(f"'{duration}' is not a duration (a number and s, m, h or d: 24h, 7d)")
    return int(m.group(1)) * _UNITS[m.group(2)]


def tally(
    policy: Policy,
    rule: Rule,
    signatures: Iterable[dict[str, Any]],
    excluded: dict[str, str],
    *,
    vouches: str,
    meaning: str | None,
) -> tuple[set[str], list[str]]:
    """The principals whose signatures count towards `rule`, and why each other one does not.

    Only records that vouch for `vouches` (with `meaning`, when given) count: every signed
    statement about a plan names its hash, so without this the author's `plan.authored` (or an
    executor's `plan.used`) copied among the approvals approved the plan whenever separation
    of duties did not exclude its signer. `excluded` maps principals who may not count (the
    plan's author, the executor...) to why.
    """
    members = policy.members(rule.groups)
    counted: set[str] = set()
    refused: list[str] = []
    for sig in signatures:
        kind = (sig.get("vouches"), sig.get("meaning"))
        if kind[0] != vouches or (meaning is not None and kind[1] != meaning):
            wanted = f"{vouches} ({meaning})" if meaning else vouches
            refused.append(f"{sig.get('by')}: signs {kind[0]} ({kind[1]}), not {wanted}")
            continue
        verdict = policy.check(sig)
        who = verdict.by
        if not verdict.signed:
            refused.append(f"{who}: unsigned")
        elif not verdict.ok:
            refused.append(f"{who}: {verdict.reason}")
        elif who in excluded:
            refused.append(f"{who}: {excluded[who]}")
        elif who not in members:
            refused.append(f"{who}: not in {', '.join(rule.groups)}")
        else:
            counted.add(who)
    return counted, refused


def missing(rule: Rule, counted: set[str], refused: list[str], what: str) -> str:
    """'' when `counted` satisfies the rule, else the refusal's text naming what is missing."""
    if len(counted) >= rule.count:
        return ""
    have = f" (have {len(counted)}: {', '.join(sorted(counted))})" if counted else " (have 0)"
    why = f"; not counted: {'; '.join(refused)}" if refused else ""
    return f"{what} needs {rule.describe()}{have}{why}"
