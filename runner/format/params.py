"""Typed params: from `-p K=V`, `--params FILE`, `RUNBOOK_PARAM_<NAME>`, a prompt, or the default."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.errors import UsageError
from runner.format.model import Param, Runbook, Scalar


class ParamError(ValueError):
    pass


@dataclass(frozen=True)
class Written:
    """A value of a params file that YAML 1.1 read as a number, boolean or date, and its text
    as written: a string param gets `mode: 0755` as "0755" (YAML's value is 493), `1.10` as
    "1.10" and `yes` as "yes"; an integer, number or boolean param gets YAML's value."""

    value: Any
    text: str


def coerce(param: Param, value: Any) -> Scalar:
    """Convert a raw value (a string from the command line, or YAML) to the param's type."""
    kind = param.type
    if isinstance(value, Written):
        value = value.text if kind == "string" else value.value
    try:
        result: Scalar
        if kind == "integer":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            result = int(value)
        elif kind == "number":
            if isinstance(value, bool):
                raise ValueError
            result = float(value)
        elif kind == "boolean":
            result = _boolean(value)
        else:
            if isinstance(value, bool | dict | list):
                raise ValueError
            result = str(value)
    except (TypeError, ValueError):
        raise ParamError(f"{_show(param, value)} is not a valid {kind}") from None
    if param.choices and result not in param.choices:
        allowed = ", ".join(str(c) for c in param.choices)
        raise ParamError(f"{_show(param, value)} is not one of: {allowed}")
    if param.pattern and not re.fullmatch(param.pattern, str(result)):
        raise ParamError(f"{_show(param, value)} does not match {param.pattern}")
    return result


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ValueError(text)


def _show(param: Param, value: Any) -> str:
    return "the secret value" if param.secret else repr(value)


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"-p expects NAME=VALUE, got {item!r}")
        out[name.strip()] = value
    return out


def read_file(path: str) -> dict[str, Any]:
    """`--params FILE` and `-e @FILE`: a YAML/JSON mapping of NAME: VALUE."""
    from runner.errors import InvalidInput, Location, Problem
    from runner.format.source import load_file

    doc = load_file(path)
    if not isinstance(doc.data, dict):
        raise InvalidInput(
            [Problem(Location(doc.file, 1, 1), "a params file is a mapping of NAME: VALUE")]
        )
    return {
        k: Written(v, doc.written[(k,)]) if (k,) in doc.written else v for k, v in doc.data.items()
    }


def extra_vars(items: Sequence[str]) -> dict[str, Any]:
    """Ansible's `-e`: `a=1 b=2` (split like a shell line), `@file.yaml`, or a JSON object."""
    import json
    import shlex

    out: dict[str, Any] = {}
    for item in items:
        text = item.strip()
        if text.startswith("@"):
            out.update(read_file(text[1:]))
        elif text.startswith("{"):
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise UsageError(f"-e: not a JSON object: {exc}") from None
            if not isinstance(data, dict):
                raise UsageError("-e: expected a JSON object")
            out.update(data)
        else:
            try:
                words = shlex.split(text)
            except ValueError as exc:
                raise UsageError(f"-e {item!r}: {exc}") from None
            for w in words:
                if "=" not in w:
                    raise UsageError(f"-e expects NAME=VALUE, @FILE or JSON, got {w!r}")
            out.update(parse_assignments(words))
    return out


def resolve(
    rb: Runbook,
    given: Mapping[str, Any],
    *,
    prompt: Callable[[Param], str | None] | None = None,
    environ: Mapping[str, str] | None = None,
    later: Collection[str] = (),
) -> dict[str, Scalar | None]:
    """Every param's final value, in declaration order. Raises UsageError naming the problem.
    `later`: params whose value is only known at run time (a `call:` whose `with:` waits for a
    capture): given, and left out here; checked with the others when the run knows them."""
    environ = os.environ if environ is None else environ
    unknown = sorted((set(given) | set(later)) - {p.name for p in rb.params})
    if unknown:
        from runner.format.suggest import did_you_mean

        names = [p.name for p in rb.params]
        hint = did_you_mean(unknown[0], names)
        declared = ", ".join(names) or "none"
        raise UsageError(f"{rb.id}: unknown param '{unknown[0]}'{hint} (declared: {declared})")
    values: dict[str, Scalar | None] = {}
    for p in rb.params:
        if p.name in later:
            continue
        raw: Any = given.get(p.name)
        if raw is None:
            raw = environ.get(f"RUNBOOK_PARAM_{p.name.upper()}")
        if raw is None and p.default is not None:
            raw = p.default
        if raw is None and p.secret and prompt is not None:
            raw = prompt(p)
        if raw is None:
            if p.required or p.secret:
                how = f"-p {p.name}=VALUE or RUNBOOK_PARAM_{p.name.upper()}"
                raise UsageError(f"{rb.id}: param '{p.name}' is required ({how})")
            values[p.name] = None  # optional and not given: defined, and tests as `is none`
            continue
        try:
            values[p.name] = coerce(p, raw)
        except ParamError as exc:
            raise UsageError(f"{rb.id}: param '{p.name}': {exc}") from None
    return values


def secret_names(rb: Runbook) -> set[str]:
    return {p.name for p in rb.params if p.secret}


def without_runner_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for a program the runner starts (a step's command, an inventory script):
    the runner's own, without its secrets: secret params given as RUNBOOK_PARAM_<NAME>, and the
    audit signing key (RUNBOOK_SIGNING_KEY: a path, or the PEM itself; audit/signing.py). A
    command holding the key could sign a forged audit log; a step gets the params it uses through
    its text, and no others."""
    return {
        k: v
        for k, v in environ.items()
        if k != "RUNBOOK_SIGNING_KEY" and not k.startswith("RUNBOOK_PARAM_")
    }
