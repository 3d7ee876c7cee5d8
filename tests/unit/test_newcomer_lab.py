"""The newcomer's lab (tests/fixtures/newcomer-lab.yaml) validates clean, with no version.

It was written from the docs and ``labctl init`` alone (issue 27, "How to know"):
four Fedora CoreOS servers, an APC PDU, one switch. It names no software version
and no SNMP version (3 is the default the docs promise); the only ``version`` key
is the inventory format's, which the schema requires.
"""

from __future__ import annotations

import yaml

from labctl.inventory import load_inventory
from tests.conftest import FIXTURES

NEWCOMER = FIXTURES / "newcomer-lab.yaml"


def _version_keys(node: object, where: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            if key == "version":
                found.append(here)
            found += _version_keys(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _version_keys(value, f"{where}[{i}]")
    return found


def test_the_newcomer_lab_validates_with_no_error_nor_warning() -> None:
    for simulated in (True, False):
        result = load_inventory(NEWCOMER, simulated=simulated)
        problems = [f"{p.check_id} {p.message}" for p in result.problems]
        if simulated:
            assert problems == [], problems
        else:  # a real lab needs Calico's manifest, which the docs say to name
            assert [p.split()[0] for p in problems] == ["LAB120"], problems
    inventory = load_inventory(NEWCOMER).inventory
    assert inventory is not None
    assert len(inventory.servers) == 4
    assert {s.os.distribution for s in inventory.servers} == {"fedora-coreos"}
    assert [p.profile for p in inventory.pdus] == ["apc-rpdu2"]
    assert [p.snmp.version for p in inventory.pdus] == ["3"]
    assert len(inventory.switches) == 1


def test_the_newcomer_lab_names_no_version_but_the_format_s() -> None:
    assert _version_keys(yaml.safe_load(NEWCOMER.read_text())) == ["version"]
