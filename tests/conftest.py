"""Shared test helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "inventory.yaml"
FIXTURES = ROOT / "tests" / "fixtures"
GOLDEN = FIXTURES / "golden"


def assert_golden(name: str, text: str) -> None:
    """``text`` is what ``tests/fixtures/golden/NAME`` holds.

    ``LABCTL_UPDATE_GOLDEN=1`` rewrites the file instead: review its diff like code.
    """
    golden = GOLDEN / name
    if os.environ.get("LABCTL_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), f"{name} changed; LABCTL_UPDATE_GOLDEN=1 rewrites it"


@pytest.fixture
def reference_text() -> str:
    return REFERENCE.read_text()
