"""Every broken inventory in tests/fixtures/bad/ is reported with the exact id and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labctl.inventory import load_inventory
from labctl.inventory.checks import REGISTRY

BAD = Path(__file__).resolve().parents[1] / "fixtures" / "bad"
FIXTURES = sorted(BAD.glob("*.yaml"))


def _header(path: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():  # not-utf8.yaml has a bad byte
        match = re.match(r"# (bad|expect|also|never-printed|message|lab): (.*)", line)
        if not match:
            break
        fields[match.group(1)] = match.group(2)
    return fields


def test_there_are_enough_fixtures() -> None:
    assert len(FIXTURES) >= 25


def test_every_check_has_a_fixture() -> None:
    covered = {_header(p)["expect"].split()[0] for p in FIXTURES}
    assert set(REGISTRY) - covered == set()


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_bad_fixture(path: Path) -> None:
    header = _header(path)
    check_id, _, line = header["expect"].split()
    allowed = {check_id, *header.get("also", "").split()}
    # A lab check's fixture names the lab kind it is checked as (real: its findings count).
    lab = header.get("lab")
    result = load_inventory(path, None if lab is None else lab == "simulated")
    found = {(p.check_id, p.position.line if p.position else None) for p in result.problems}
    assert (check_id, int(line)) in found, f"expected {check_id} at line {line}, got {found}"
    assert {p.check_id for p in result.problems} <= allowed, f"unexpected findings: {found}"
    severity = REGISTRY[check_id].severity
    matching = [p for p in result.problems if p.check_id == check_id]
    assert all(p.severity == severity for p in matching)
    message = header.get("message")
    if message:
        assert any(message in p.message for p in matching), [p.message for p in matching]
    secret = header.get("never-printed")
    if secret:
        for p in result.problems:
            assert secret not in p.message
