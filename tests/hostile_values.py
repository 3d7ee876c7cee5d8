"""Hostile inventory values: the cases, the inventories that carry them, and their table.

One source for two readers: tests/unit/test_hostile_values.py feeds each case of
tests/fixtures/hostile/cases.yaml through `labctl validate` and checks what refused
it, and docs/reliability.md carries the table rendered here from the same file
(`python scripts/gen_docs.py` rewrites it; the test fails when it is stale).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml

from labctl.inventory.problems import DocPath, format_path

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "fixtures" / "hostile" / "cases.yaml"
REFERENCE = ROOT / "inventory.yaml"
RELIABILITY = ROOT / "docs" / "reliability.md"
BEGIN = "<!-- hostile-values: generated from tests/fixtures/hostile/cases.yaml -->"
END = "<!-- hostile-values: end -->"
_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


@dataclass(frozen=True)
class Case:
    field: str  # where the value goes, as validate prints paths: servers[0].nics[0].name
    value: Any
    refused_by: str  # the check id
    rule: str  # a $defs type of the schema, or what else refuses it
    why: str  # what the value would do on a node if it were let through
    reported_at: str = ""  # where validate reports it, when not at `field`
    key: bool = False  # the value is a mapping whose (hostile) key is the case
    also: dict[str, Any] = dataclasses.field(default_factory=dict)  # other fields the case needs

    @property
    def path(self) -> DocPath:
        return parse_path(self.field)

    @property
    def expected_path(self) -> DocPath:
        return parse_path(self.reported_at or self.field)


def parse_path(text: str) -> DocPath:
    """``servers[0].nics[0].name`` -> ``("servers", 0, "nics", 0, "name")``."""
    steps: list[str | int] = []
    for part in text.split("."):
        for name, index in _STEP.findall(part):
            steps.append(int(index) if index else name)
    assert format_path(tuple(steps)) == text, text
    return tuple(steps)


def load_cases() -> list[Case]:
    return [Case(**entry) for entry in yaml.safe_load(CASES.read_text())]


def _put(data: Any, path: DocPath, value: Any) -> None:
    node = data
    for step, following in pairwise(path):
        if isinstance(node, dict) and step not in node:
            node[step] = [] if isinstance(following, int) else {}
        node = node[step]
    node[path[-1]] = value


def inventory_with(case: Case) -> str:
    """The reference inventory with the case's value (and what it needs) put in."""
    data = yaml.safe_load(REFERENCE.read_text())
    for where, value in case.also.items():
        # A copy: the case's own value would be changed by the _put below, for every
        # later test that reads the case (and for cases sharing it through a YAML alias).
        _put(data, parse_path(where), copy.deepcopy(value))
    _put(data, case.path, case.value)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=False)


def _cell(text: str) -> str:
    """Markdown table cell: code span, with control characters and '|' spelt out."""
    shown = repr(text)[1:-1] if isinstance(text, str) else yaml.safe_dump(text).strip()
    shown = shown.replace("|", "\\|")
    # A value holding a backtick goes in a double-backtick span (CommonMark).
    return f"`` {shown} ``" if "`" in shown else f"`{shown}`"


def _value_cell(case: Case) -> str:
    if case.key:
        (key,) = case.value
        return f"key {_cell(key)}"
    return _cell(case.value)


def table_markdown(cases: list[Case]) -> str:
    lines = [
        BEGIN,
        "",
        "| # | field | hostile value | what it would do | refused by |",
        "|---|---|---|---|---|",
    ]
    for n, case in enumerate(cases, 1):
        rule = f"*{case.rule}*" if not case.rule.startswith("LAB") else case.rule
        why = case.why.replace("|", "\\|")
        lines.append(
            f"| {n} | `{case.field}` | {_value_cell(case)} | {why} | {case.refused_by} ({rule}) |"
        )
    lines += ["", END]
    return "\n".join(lines)


def rewrite_reliability_doc() -> None:
    text = RELIABILITY.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    RELIABILITY.write_text(text[:start] + table_markdown(load_cases()) + text[end:])


if __name__ == "__main__":
    rewrite_reliability_doc()
