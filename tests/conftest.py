"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "inventory.yaml"
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture
def reference_text() -> str:
    return REFERENCE.read_text()
