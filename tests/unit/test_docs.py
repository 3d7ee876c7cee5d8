"""Generated docs are current, and the schema documents every field."""

from __future__ import annotations

import re
from typing import Any

import yaml

from labctl.inventory.reference import checks_markdown, inventory_markdown
from labctl.inventory.schema import schema
from tests.conftest import ROOT


def test_generated_docs_are_current() -> None:
    stale = "is stale: run `python scripts/gen_docs.py`"
    assert (ROOT / "docs/inventory.md").read_text() == inventory_markdown(schema()), stale
    assert (ROOT / "docs/checks.md").read_text() == checks_markdown(), stale


def _walk(node: Any, path: str, out: list[str]) -> None:
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            if "description" not in prop and "$ref" not in prop:
                out.append(f"{path}.{name}")
        for key, value in node.items():
            if key != "if":  # conditions name properties, they do not declare them
                _walk(value, f"{path}/{key}", out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk(value, f"{path}[{i}]", out)


def test_every_property_has_a_description() -> None:
    missing: list[str] = []
    _walk(schema(), "#", missing)
    assert missing == []


def test_objects_refuse_unknown_fields() -> None:
    loose: list[str] = []

    def visit(node: Any, path: str) -> None:
        if isinstance(node, dict):
            is_object = node.get("type") == "object" and "properties" in node
            if is_object and node.get("additionalProperties") is not False:
                loose.append(path)
            for key, value in node.items():
                visit(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                visit(value, f"{path}[{i}]")

    visit(schema(), "#")
    assert loose == []


def test_docs_point_only_inside_the_repository() -> None:
    """A user who clones the project has only the project: every relative link resolves in it."""
    outside: list[str] = []
    for page in [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = re.sub(r"`[^`\n]*`", "", page.read_text())  # code is not a link
        if "../shared" in text:
            outside.append(f"{page.name}: ../shared")
        for target in re.findall(r"\]\(([^)#\s]+)", text):
            if "://" in target:
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                outside.append(f"{page.name}: {target}")
    assert outside == []


def _tables(page: str) -> list[dict[str, list[str]]]:
    """Each table of the page: its first column's name (without backticks) -> the row."""
    tables: list[dict[str, list[str]]] = []
    current: dict[str, list[str]] | None = None
    for line in page.splitlines():
        if not line.startswith("|"):
            current = None
            continue
        if current is None:
            current = {}
            tables.append(current)
            continue  # the header
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells and not cells[0].startswith("---"):
            current[cells[0].strip("`")] = cells
    return tables


def _objects(node: Any, out: list[dict[str, Any]]) -> None:
    """Every object the schema declares, at any depth (conditions declare none)."""
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict):
            out.append(node)
        for key, value in node.items():
            if key != "if":
                _objects(value, out)
    elif isinstance(node, list):
        for value in node:
            _objects(value, out)


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def test_inventory_page_has_every_field_enum_value_and_default() -> None:
    """docs/inventory.md is the schema whole: every object's fields in one table of the page,
    each default as YAML writes it in that row, every enum value somewhere."""
    page = (ROOT / "docs/inventory.md").read_text()
    tables = _tables(page)
    whole = schema()
    objects: list[dict[str, Any]] = []
    _objects(whole, objects)
    missing: list[str] = []
    for node in objects:
        props = node["properties"]
        table = next((t for t in tables if set(props) <= set(t)), None)
        if table is None:
            missing.append(f"no table with all of {sorted(props)}")
            continue
        for name, prop in props.items():
            if "default" in prop and f"`{_flow(prop['default'])}`" != table[name][3]:
                missing.append(f"{name}: default {table[name][3]!r}, schema {prop['default']!r}")

    def enums(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.get("enum", ()):
                if f"`{_flow(value)}`" not in page:
                    missing.append(f"enum value {value!r}")
            for child in node.values():
                enums(child)
        elif isinstance(node, list):
            for child in node:
                enums(child)

    enums(whole)
    assert missing == []
