"""Messages that lead to the fix (issue 27 item 3), beyond what each bad fixture's header
checks: each missing field once, `snmp.version: 3` accepted, the boot service's address
counted as used, a non-UTF-8 byte placed at its line and column."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from labctl.inventory import check_text, load_inventory
from labctl.inventory.ipam import utilisation
from tests.conftest import FIXTURES, REFERENCE

BAD = FIXTURES / "bad"


def test_each_missing_required_field_is_reported_once() -> None:
    result = load_inventory(BAD / "required-four-missing.yaml")
    fields = sorted(p.path[-1] for p in result.problems)
    assert fields == ["domain", "network", "pod_cidr", "username"]


def test_a_file_missing_top_level_sections_reports_each_once() -> None:
    result = check_text("version: 1\nlab: {name: x}\n", "lab.yaml")
    fields = sorted(p.path[-1] for p in result.problems)
    assert fields == ["cluster", "domain", "networks", "servers"]


def test_snmp_version_3_may_be_written_as_a_number() -> None:
    text = REFERENCE.read_text().replace('version: "3"', "version: 3")
    assert 'version: "3"' not in text
    result = check_text(text, "inventory.yaml")
    assert result.problems == []
    assert result.inventory is not None
    versions = {p.snmp.version for p in result.inventory.pdus}
    assert versions == {"3"}


def test_snmp_version_3_as_a_number_still_needs_its_user() -> None:
    text = REFERENCE.read_text().replace('version: "3"\n      username: labctl\n', "version: 3\n")
    result = check_text(text, "inventory.yaml")
    assert {(p.check_id, p.path[-1]) for p in result.problems} == {("LAB004", "username")}


def test_the_boot_service_address_counts_as_used() -> None:
    result = load_inventory(REFERENCE)
    inv = result.inventory
    assert inv is not None and inv.lab.boot is not None
    without = dataclasses.replace(inv, lab=dataclasses.replace(inv.lab, boot=None))
    assert utilisation(inv)["public"][0] == utilisation(without)["public"][0] + 1


def test_a_byte_that_is_not_utf8_is_placed_at_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\nlab:\n  name: x\n  site: G\xe4vle\n")
    (problem,) = load_inventory(path).problems
    assert problem.check_id == "LAB001"
    assert problem.position is not None
    assert (problem.position.line, problem.position.column) == (4, 10)
    assert "0xe4" in problem.message
