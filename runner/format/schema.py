"""JSON Schema validation. `schemas/*.schema.json` is the one home of the format's rules.

Messages are rewritten into one operator-readable line each and placed with the YAML marks:
`runbooks/x.yaml:14:7: steps[3].run: expected a string, got a number`.

A file that passed is remembered (see `validate`), so the next load of the same text skips
jsonschema altogether: importing it and checking costs ~30 ms of a ~0.3 s run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import Problem
from runner.format import diskcache, source
from runner.format.source import Document, KeyPath

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

KINDS = ("runbook", "checklist", "inventory", "policy")
CACHE_AREA = "validated"  # ~/.cache/runbook/validated: one empty entry per text that passed

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing",
}


def schema_dir() -> Path:
    """The repository's schemas/ (editable installs) or the copy a wheel carries."""
    import runner  # the package's own folder, wherever in it this module lives

    here = Path(runner.__file__).resolve().parent
    for candidate in (here.parent / "schemas", here / "_schemas"):
        if (candidate / "runbook.schema.json").is_file():
            return candidate
    raise FileNotFoundError("schemas/ not found next to the runner package")


def schema_text(kind: str) -> str:
    return (schema_dir() / f"{kind}.schema.json").read_text(encoding="utf-8")


@cache
def _validator(kind: str) -> Any:
    from jsonschema import Draft202012Validator, validators

    def one_of_keys(validator: Any, keys: list[str], instance: Any, schema: Any) -> Iterator[Any]:
        # "exactly one of run/manual/http/call": jsonschema's own oneOf message is unreadable
        if not isinstance(instance, dict):
            return
        present = [k for k in keys if k in instance]
        if len(present) != 1:
            from jsonschema.exceptions import ValidationError

            said = ", ".join(present) if present else "none"
            yield ValidationError(f"needs exactly one of {', '.join(keys)} (has {said})")

    cls = validators.extend(Draft202012Validator, {"x-one-of": one_of_keys})  # type: ignore[no-untyped-call]
    return cls(json.loads(schema_text(kind)))


def validate(doc: Document, kind: str) -> list[Problem]:
    """All schema problems of a document, in file order.

    A pass is recorded in the cache (runner/format/diskcache.py) under a key made of the document's
    text, the schema and what checked it; the same text later passes without jsonschema. Only
    passes are recorded, so a file with problems is always checked in full and reported with
    its positions, and an edited file has a new key.
    """
    key = _cache_key(doc, kind)
    if key is not None and diskcache.read(CACHE_AREA, key) is not None:
        return []
    problems = [_problem(doc, err) for err in _validator(kind).iter_errors(doc.data)]
    problems.sort(key=lambda p: (p.location.line, p.location.col, p.message))
    if key is not None and not problems:
        diskcache.write(CACHE_AREA, key, "")
    return problems


def _cache_key(doc: Document, kind: str) -> str | None:
    """What a pass depends on: the text, the schema, the code that reads the text into values and
    validates them (source.py, this module) and jsonschema's copy."""
    if not doc.text:
        return None
    try:
        return diskcache.key(
            "schema-passed",
            kind,
            schema_text(kind),
            diskcache.code(__file__),
            diskcache.code(source.__file__),
            diskcache.installed("jsonschema"),
            doc.text,
        )
    except OSError:
        return None


def _problem(doc: Document, err: ValidationError) -> Problem:
    path: KeyPath = tuple(err.absolute_path)
    message, key_path = _message(err)
    if key_path is not None:
        return doc.problem((*path, key_path), message, key=True)
    return doc.problem(path, message)


def _message(err: ValidationError) -> tuple[str, str | None]:
    """A readable message, and a key to point at when the problem is a key itself."""
    schema = err.schema if isinstance(err.schema, dict) else {}
    kind = err.validator
    value: Any = err.validator_value
    if kind == "additionalProperties" and isinstance(err.instance, dict):
        allowed = set(schema.get("properties", {}))
        extra = sorted(k for k in err.instance if k not in allowed)
        if extra:
            from runner.format.suggest import did_you_mean

            hint = did_you_mean(extra[0], allowed)
            hint += f" (expected one of: {', '.join(sorted(allowed))})" if allowed else ""
            return f"unknown key '{extra[0]}'{hint}", extra[0]
    if kind == "required":
        missing = str(err.message).split("'")[1] if "'" in err.message else err.message
        return f"missing required key '{missing}'", None
    if "x-error" in schema and kind in ("pattern", "oneOf", "anyOf", "type", "minimum"):
        return f"{_show(err.instance)}: {schema['x-error']}", None
    if kind == "type":
        expected = value
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        return f"expected {wanted}, got {_kind_of(err.instance)}", None
    if kind == "enum":
        choices = ", ".join(str(c) for c in value)
        return f"{_show(err.instance)} is not one of: {choices}", None
    if kind == "pattern":
        return f"{_show(err.instance)} does not match {value}", None
    if kind in ("oneOf", "anyOf") and err.context:
        best = min(err.context, key=lambda e: len(list(e.absolute_path)))
        return _message(best)[0], None
    if kind == "minItems":
        return "must not be empty", None
    if kind == "minLength":
        return "must not be empty", None
    if kind == "propertyNames":
        return f"{_show(err.instance)} is not a valid name (letters, digits, underscore)", None
    return err.message, None


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
