"""Hostile inventory values are refused by `labctl validate`, each where it stands.

Issue 21: validate is the gate in CI and pre-commit, and inventory strings reach root
shells, unit files and configs on every node. Every case of
tests/fixtures/hostile/cases.yaml (the same file docs/reliability.md's table is made
from) is put into the reference inventory and must be refused: by the check and rule
the case names, at the field's own line and column, with a sentence (never a
traceback), nothing else refused, and nothing written. The schema itself must give
every string field a grammar, and every field that reaches a node must have a case.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from labctl.cli.main import app
from labctl.inventory import check_text
from labctl.inventory.load import load_yaml
from labctl.inventory.problems import format_path
from labctl.inventory.schema import SECRET_FIELDS, schema
from tests.hostile_values import (
    RELIABILITY,
    Case,
    inventory_with,
    load_cases,
    table_markdown,
)

CASES = load_cases()
runner = CliRunner()
LINE = re.compile(
    r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): error (?P<id>LAB\d{3}) (?P<path>\S+): "
)
# String fields whose values are not held to a grammar of their own, and why.
NO_CASE_NEEDED = {
    # disk-identity's part of the issue: stable disk references (tests/unit/test_sim_disks.py)
    "servers[].disks[].device",
    # Literal secrets: any byte may be part of a password; renderers quote them, and
    # validate refuses literals unless lab.allow_literal_secrets (LAB060).
    "servers[].bmc.password",
    "cluster.calico.mesh_password",
    "cluster.calico.peers[].password",
    "cluster.pki.passphrase",
    "pdus[].snmp.auth_key",
    "pdus[].snmp.priv_key",
    "pdus[].snmp.community",
    "switches[].snmp.auth_key",
    "switches[].snmp.priv_key",
    "switches[].snmp.community",
    "cluster.monitoring.receivers[].token",
    "cluster.monitoring.receivers[].password",
    # 64 hex digits, a fixed-form pattern since the field was added
    "cluster.calico.manifest.sha256",
}


def _defs() -> dict[str, Any]:
    defs: dict[str, Any] = schema()["$defs"]
    return defs


def _first_sentence(text: str) -> str:
    return text.split(". ")[0].rstrip(".")


@pytest.mark.parametrize("case", CASES, ids=[f"{c.field}={c.value!r}"[:80] for c in CASES])
def test_hostile_value_is_refused_where_it_stands(case: Case, tmp_path: Path) -> None:
    text = inventory_with(case)
    result = check_text(text, "inventory.yaml")
    errors = result.errors
    assert errors, f"{case.field}: {case.value!r} was accepted"
    where = {(p.check_id, p.path) for p in errors}
    assert (case.refused_by, case.expected_path) in where, [
        (p.check_id, p.path_text, p.message) for p in errors
    ]
    # Refused for this value alone: the reference inventory is otherwise valid.
    assert {p.path for p in errors} == {case.expected_path}, [p.path_text for p in errors]
    (problem,) = [p for p in errors if p.check_id == case.refused_by]
    # At the field itself (its value, or its key), never the top of the file.
    _, source = load_yaml(text, "inventory.yaml")
    at = case.expected_path if not case.key else (*case.path, next(iter(case.value)))
    assert problem.position in (source.value_at(at), source.key_at(at)), problem
    assert problem.position is not None and problem.position.line > 1
    # The sentence says which grammar: the first sentence of the $defs type's description
    # (a secret's sentence names no value and no grammar: it says {env: NAME} or {file: PATH}).
    secret = SECRET_FIELDS & {str(step) for step in case.path}
    if case.rule in _defs() and case.refused_by == "LAB005" and not secret:
        assert _first_sentence(_defs()[case.rule]["description"]) in problem.message
    if secret:
        assert repr(case.value) not in problem.message


@pytest.mark.parametrize("case", CASES[::9], ids=lambda c: c.field)
def test_cli_says_file_line_col_and_writes_nothing(case: Case, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(inventory_with(case))
    before = sorted(tmp_path.rglob("*"))
    out = runner.invoke(app, ["validate", str(inventory)])
    assert out.exit_code == 1, out.output
    assert out.exception is None or isinstance(out.exception, SystemExit), out.exception
    assert "Traceback" not in out.output
    found = [m for m in map(LINE.match, out.output.splitlines()) if m]
    assert found, out.output
    assert {(m["id"], m["path"]) for m in found} == {
        (case.refused_by, format_path(case.expected_path))
    }
    assert sorted(tmp_path.rglob("*")) == before


def _string_fields(node: Any, path: str, out: set[str]) -> None:
    """Schematic paths (servers[].nics[].name) of every string the schema admits."""
    while "$ref" in node:
        name = node["$ref"].split("/")[-1]
        node = {**_defs()[name], **{k: v for k, v in node.items() if k != "$ref"}}
    if node.get("type") == "string":
        out.add(path)
        return
    for key, prop in node.get("properties", {}).items():
        _string_fields(prop, f"{path}.{key}" if path else key, out)
    if isinstance(node.get("items"), dict):
        _string_fields(node["items"], f"{path}[]", out)
    for alternative in node.get("oneOf", []) + node.get("anyOf", []):
        if alternative.get("type") == "string" and "pattern" not in alternative:
            out.add(path)  # a literal secret
        elif alternative.get("type") == "object":
            continue  # {env: NAME} / {file: PATH}: their own types, tried below
        else:
            _string_fields(alternative, path, out)
    if isinstance(node.get("additionalProperties"), dict):
        _string_fields(node["additionalProperties"], f"{path}.*", out)
    if "propertyNames" in node:
        _string_fields(node["propertyNames"], f"{path}.*", out)


def _schematic(case: Case) -> str:
    text = re.sub(r"\[\d+\]", "[]", case.field)
    text = re.sub(r"^cluster\.ceph\.config\..*$", "cluster.ceph.config.*", text)
    text = re.sub(r"^cluster\.monitoring\.alert_for\..*$", "cluster.monitoring.alert_for.*", text)
    return "cluster.ceph.config.*" if case.key else text


def test_every_string_that_reaches_a_node_has_a_hostile_case() -> None:
    fields: set[str] = set()
    _string_fields(schema(), "", fields)
    tried = {_schematic(c) for c in CASES} | {
        re.sub(r"\[\d+\]", "[]", c.reported_at) for c in CASES if c.reported_at
    }
    assert sorted(fields - NO_CASE_NEEDED - tried) == []
    assert len(CASES) >= 30


def test_every_string_has_a_grammar() -> None:
    """No string reaches a renderer unchecked: each has a pattern or a closed set, but
    the literal secret (any byte may be part of a password; renderers quote it)."""
    loose: list[str] = []

    def visit(node: Any, where: str) -> None:
        if isinstance(node, dict):
            is_string = node.get("type") == "string"
            literal_secret = where.endswith("secret/oneOf[2]")
            if is_string and not ({"pattern", "enum", "const"} & set(node)) and not literal_secret:
                loose.append(where)
            for key, value in node.items():
                visit(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                visit(value, f"{where}[{i}]")

    visit(schema(), "#")
    assert loose == []


def test_every_grammar_is_tried() -> None:
    grammars = {n for n, d in _defs().items() if d.get("type") == "string" and "pattern" in d}
    assert sorted(grammars - {c.rule for c in CASES}) == []


def test_reliability_table_is_the_cases() -> None:
    assert table_markdown(CASES) in RELIABILITY.read_text(), (
        "docs/reliability.md's hostile-values table is stale: run `python scripts/gen_docs.py`"
    )


def test_mac_check_refuses_a_trailing_newline() -> None:
    """LAB015 read `$` as Python does: 'aa:bb:cc:dd:ee:ff\\n' passed it (the schema now
    refuses it first; the check must not rely on that)."""
    import yaml

    from labctl.inventory.checks import mac_form
    from labctl.inventory.model import build_inventory
    from tests.hostile_values import REFERENCE

    data = yaml.safe_load(REFERENCE.read_text())
    data["servers"][0]["nics"][0]["mac"] = "9c:8e:99:1a:2b:01\n"
    findings = list(mac_form(build_inventory(data)))
    assert [path for path, _ in findings] == [("servers", 0, "nics", 0, "mac")]
