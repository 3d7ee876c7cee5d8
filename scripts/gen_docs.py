"""Rewrite docs/inventory.md and docs/checks.md from the schema and the check registry,
and docs/reliability.md's hostile-values table from tests/fixtures/hostile/cases.yaml."""

from __future__ import annotations

import sys
from pathlib import Path

from labctl.files import write_atomic
from labctl.inventory.reference import checks_markdown, inventory_markdown
from labctl.inventory.schema import schema

DOCS = Path(__file__).resolve().parents[1] / "docs"

if __name__ == "__main__":
    write_atomic(DOCS / "inventory.md", inventory_markdown(schema()).encode())
    write_atomic(DOCS / "checks.md", checks_markdown().encode())
    sys.path.insert(0, str(DOCS.parent))
    from tests.hostile_values import rewrite_reliability_doc

    rewrite_reliability_doc()
    print("wrote docs/inventory.md, docs/checks.md and docs/reliability.md's hostile-values table")
