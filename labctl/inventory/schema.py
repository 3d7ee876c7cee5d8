"""The inventory's JSON Schema (the one source of truth for its shape).

Two validators, one schema: jsonschema-rs decides whether a document is valid
(about 100x faster, it keeps `validate` on 1,000 servers well under a second),
and only for an invalid document does the pure-Python jsonschema walk it again
to explain. Its errors become positioned ``Problem``s with sentences of our own:
jsonschema's messages quote the offending value, which could be a secret.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from labctl.inventory.load import SourceMap
from labctl.inventory.problems import DocPath, Problem, Severity

if TYPE_CHECKING:  # imported only to explain an invalid document (25 ms saved otherwise)
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

SCHEMA_RESOURCE = "inventory.schema.json"
# Fields whose values are secrets: their values never appear in a message.
SECRET_FIELDS = frozenset({"password", "auth_key", "priv_key", "community", "passphrase", "token"})

# Names people type for a value the schema spells otherwise: other products' or older
# names, abbreviations. Only a hint: the value is still refused, the message says what
# to write. Keys are compared after _normalise; a target not in the enum is ignored.
ENUM_ALIASES = {
    "fcos": "fedora-coreos",
    "coreos": "fedora-coreos",
    "fedoracoreos": "fedora-coreos",
    "flatcar-linux": "flatcar",
    "flatcar-container-linux": "flatcar",
    "master": "control-plane",
    "controlplane": "control-plane",
    "mgmt": "management",
    "oob": "management",
    "sha1": "sha",
    "aes128": "aes",
    "v3": "3",
    "v2c": "2c",
    "docker": "container",
    "podman": "container",
}

_JSON_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing (null)",
}


def schema_text() -> str:
    return resources.files("labctl.data").joinpath(SCHEMA_RESOURCE).read_text("utf-8")


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_text())
    return loaded


@cache
def _ecma(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled so that it matches what it matches in ECMA-262 (JSON Schema's
    dialect, and jsonschema-rs's): there ``$`` is the end of the text, while Python's ``$``
    also matches before a final newline, which let ``"fohn\\n"`` pass the explaining
    validator after the fast one had refused it. Each ``$`` outside a class becomes ``\\Z``."""
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            out.append("\\Z")
            continue
        out.append(char)
    return re.compile("".join(out))


def grammar_error(type_name: str, value: str) -> str | None:
    """The sentence of the schema's string type ``$defs/type_name`` when ``value`` breaks
    it, else None: the one grammar for values that reach a node without passing through
    the inventory (the simulated lab's ``LABCTL_*`` stand-ins, labctl/sim/platform.py)."""
    node: dict[str, Any] = schema()["$defs"][type_name]
    too_long = len(value) > int(node.get("maxLength", len(value)))
    if too_long or not _ecma(str(node["pattern"])).search(value):
        return _first_sentence(node)
    return None


def _pattern(
    validator: Any, pattern: str, instance: Any, schema_node: dict[str, Any]
) -> Iterator[ValidationError]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _ecma(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator
    from jsonschema.validators import extend

    explaining = extend(Draft202012Validator, {"pattern": _pattern})  # type: ignore[no-untyped-call]
    validator: Draft202012Validator = explaining(schema())
    return validator


@cache
def _fast_validator() -> Any:
    import jsonschema_rs

    return jsonschema_rs.Draft202012Validator(schema())


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "nothing (null)" if value is None else type(value).__name__


def _is_secret(path: DocPath) -> bool:
    return any(element in SECRET_FIELDS for element in path)


def _show(value: object, path: DocPath) -> str:
    if _is_secret(path):
        return "the value (hidden: it is a secret)"
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _first_sentence(schema_node: dict[str, Any]) -> str:
    description = str(schema_node.get("description", ""))
    return description.split(". ")[0].rstrip(".") if description else ""


def _normalise(text: str) -> str:
    return "-".join(text.strip().lower().replace("_", " ").split())


def _read_as(value: object) -> str:
    """What YAML made of an unquoted value, for a hint: ``false``, ``a number``."""
    if isinstance(value, bool):
        return json.dumps(value)
    if value is None:
        return "null"
    return "a number"


def _enum_hint(value: object, choices: list[Any], typed: str | None = None) -> str:
    """``; did you mean 'x'?`` for a near miss, an alias or a case slip; else nothing."""
    allowed = [c for c in choices if isinstance(c, str)]
    if not isinstance(value, str):
        # `reboot_strategy: off` for "off" (YAML reads a bare off as false): the right
        # value, unquoted. Quote what the user typed, not what YAML made of it.
        text = typed if typed is not None else json.dumps(value)
        spelt = {_normalise(c): c for c in allowed}.get(_normalise(text))
        if spelt is None:
            return ""
        return f'; put it in quotes: "{spelt}" (YAML reads {text} unquoted as {_read_as(value)})'

    by_form = {_normalise(c): c for c in allowed}
    wanted = _normalise(value)
    if wanted in by_form:
        near = by_form[wanted]
    elif ENUM_ALIASES.get(wanted) in allowed:
        near = ENUM_ALIASES[wanted]
    else:
        close = difflib.get_close_matches(wanted, list(by_form), n=1)
        if not close:
            return ""
        near = by_form[close[0]]
    return f"; did you mean '{near}'?"


def _quote_hint(error: ValidationError, typed: str) -> str:
    """For a string field given an unquoted scalar: quote what the user typed when that
    text would be valid, else say what the field wants (`memory: 96` needs a unit, so
    quoting it is not the fix)."""
    node = error.schema if isinstance(error.schema, dict) else {}
    pattern = node.get("pattern")
    choices = node.get("enum")
    fits = (pattern is None or bool(_ecma(str(pattern)).search(typed))) and (
        choices is None or typed in choices
    )
    if fits:
        return f' (put it in quotes: "{typed}")'
    why = _first_sentence(node)
    return f": {why}" if why else ""


def _message(error: ValidationError, path: DocPath, typed: str | None = None) -> str:
    # The problem's location already names the path; only the document root needs a subject.
    where = "" if path else "the document"
    validator = str(error.validator)
    expected: Any = error.validator_value
    value = error.instance
    if validator == "type":
        types = [str(t) for t in (expected if isinstance(expected, list) else [expected])]
        want = " or ".join(_JSON_TYPES.get(t, t) for t in types)
        hint = ""
        scalar = isinstance(value, int | float) or value is None
        if "string" in types and scalar and not _is_secret(path):
            hint = _quote_hint(error, typed if typed is not None else json.dumps(value))
        kind = _kind(value)
        if typed is not None and not isinstance(value, int | float):
            kind += f" (YAML reads {typed} unquoted as {_read_as(value)})"
        return f"{where} must be {want}, not {kind}{hint}"
    if validator == "enum":
        choices = ", ".join(str(c) for c in expected)
        hint = "" if _is_secret(path) else _enum_hint(value, list(expected), typed)
        shown = typed if typed is not None and not _is_secret(path) else _show(value, path)
        return f"{where} is {shown}; expected one of: {choices}{hint}"
    if validator == "const":
        return f"{where} must be {json.dumps(expected)}, not {_show(value, path)}"
    if validator == "pattern":
        why = _first_sentence(error.schema) if isinstance(error.schema, dict) else ""
        return f"{where} is {_show(value, path)}, which is not of the expected form" + (
            f": {why}" if why else ""
        )
    if validator == "minItems":
        return f"{where} needs at least {expected} item{'s' if expected != 1 else ''}"
    if validator == "minLength":
        return f"{where} must not be empty"
    if validator == "maxLength":
        return f"{where} is longer than {expected} characters"
    if validator in ("minimum", "maximum"):
        bound = "at least" if validator == "minimum" else "at most"
        return f"{where} is {_show(value, path)}; it must be {bound} {expected}"
    if validator == "uniqueItems":
        return f"{where} lists the same item more than once"
    if validator == "oneOf" and _is_secret(path):
        return f"{where} must be {{env: NAME}}, {{file: PATH}} or a string"
    if validator == "dependentRequired":
        missing = [
            need
            for key, needs in expected.items()
            if isinstance(value, dict) and key in value
            for need in needs
            if need not in value
        ]
        return f"{where} needs {', '.join(repr(m) for m in missing)} as well"
    if _is_secret(path):
        return f"{where} is not valid ({validator})"
    return f"{where} {error.message}"


def _problems_for(error: ValidationError, source: SourceMap) -> list[Problem]:
    path: DocPath = tuple(error.absolute_path)
    file = source.file
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = (
            sorted(error.schema.get("properties", {})) if isinstance(error.schema, dict) else []
        )
        problems = []
        for key in sorted(set(error.instance) - set(allowed)):
            near = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else f"; allowed: {', '.join(allowed)}"
            problems.append(
                Problem(
                    "LAB003",
                    Severity.ERROR,
                    f"unknown field '{key}'{hint}",
                    file,
                    source.key_at((*path, key)),
                    (*path, key),
                )
            )
        return problems
    if error.validator == "required":
        required: Any = error.validator_value
        instance: Any = error.instance
        missing = [k for k in required if k not in instance]
        return [
            Problem(
                "LAB004",
                Severity.ERROR,
                f"required field '{name}' is missing",
                file,
                source.value_at(path),
                (*path, name),
            )
            for name in missing
        ]
    if error.validator in ("oneOf", "anyOf") and error.context and not _is_secret(path):
        # Report the alternative that got furthest, not "is not valid under any".
        deepest = max(error.context, key=lambda e: len(e.absolute_path))
        return _problems_for(deepest, source)
    if "propertyNames" in error.relative_schema_path and isinstance(error.instance, str):
        # A key of a free-form mapping (ceph.config) broke its grammar: point at that key.
        why = _first_sentence(error.schema) if isinstance(error.schema, dict) else ""
        what = "is too long" if error.validator == "maxLength" else "is not of the expected form"
        return [
            Problem(
                "LAB005",
                Severity.ERROR,
                f"has a key {_show(error.instance, path)}, which {what}"
                + (f": {why}" if why else ""),
                file,
                source.key_at((*path, error.instance)),
                path,
            )
        ]
    position = source.key_at(path) if error.validator in ("type", "enum") else source.value_at(path)
    message = _message(error, path, source.texts.get(path)).strip()
    return [Problem("LAB005", Severity.ERROR, message, file, position, path)]


def validate(data: Any, source: SourceMap) -> list[Problem]:
    """Check ``data`` against the schema; every problem has a position."""
    if _fast_validator().is_valid(data):
        return []
    problems: list[Problem] = []
    for error in _validator().iter_errors(data):
        problems.extend(_problems_for(error, source))
    if not problems:
        # The two validators disagree; never call an invalid document valid.
        problems.append(
            Problem(
                "LAB005",
                Severity.ERROR,
                "the document does not match the schema (run with a newer labctl for details)",
                source.file,
                source.value_at(()),
            )
        )
    # Each finding once: jsonschema reports a missing field once per `required` error,
    # and an alternative of a oneOf can repeat what another branch said.
    unique = {(p.check_id, p.path, p.message, p.position): p for p in problems}
    problems = list(unique.values())
    # Stable order: by line, then check id.
    problems.sort(key=lambda p: (p.position.line if p.position else 0, p.check_id))
    return problems
