"""Generated docs are current, and the schema documents every field."""

from __future__ import annotations

from typing import Any

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
    import re

    outside: list[str] = []
    for page in [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text()
        if "../shared" in text:
            outside.append(f"{page.name}: ../shared")
        for target in re.findall(r"\]\(([^)#\s]+)", text):
            if "://" in target:
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                outside.append(f"{page.name}: {target}")
    assert outside == []
