"""Shared test helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labctl.sim import platform as standins

# What `labctl sim env` exports. A shell that has sourced it (the demo's
# .labctl/demo.env does) would hand every test that lab's SSH settings and stand-ins,
# and a test that runs labctl without one (a real lab's view) would not get it: each
# test says its own lab's.
SIM_ENV = (*standins.NAMES, "LABCTL_SSH_USER", "LABCTL_SSH_KNOWN_HOSTS",
           "LABCTL_SSH_IDENTITY")  # fmt: skip
for _name in SIM_ENV:
    os.environ.pop(_name, None)

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
