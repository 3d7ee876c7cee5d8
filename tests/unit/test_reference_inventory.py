"""The reference lab's inventory is valid and says what the write-up says."""

from __future__ import annotations

from pathlib import Path

from labctl.inventory import load_inventory
from tests.conftest import REFERENCE


def test_reference_is_clean() -> None:
    result = load_inventory(REFERENCE)
    assert result.problems == []
    assert result.inventory is not None


def test_reference_matches_the_write_up() -> None:
    inv = load_inventory(REFERENCE).inventory
    assert inv is not None
    assert [s.name for s in inv.servers] == ["fohn", "chequita", "wind"]
    assert {s.name: s.os.channel for s in inv.servers} == {
        "fohn": "beta",
        "chequita": "beta",
        "wind": "alpha",
    }
    assert [s.name for s in inv.with_role("etcd")] == ["fohn", "chequita", "wind"]
    assert [s.name for s in inv.with_role("control-plane")] == ["fohn"]
    assert {s.name for s in inv.switches} == {"kek-core", "astrid", "tor"}
    assert [p.outlet_count for p in inv.pdus] == [8, 8]
    assert inv.cluster.kubernetes.pod_cidr == "10.188.0.0/16"
    public = {s.name: [a.address for a in s.addresses("public")] for s in inv.servers}
    assert public == {
        "fohn": ["31.31.164.220"],
        "chequita": ["31.31.164.221"],
        "wind": ["31.31.164.222"],
    }
    osds = sum(d.role == "osd" for s in inv.servers for d in s.disks)
    assert osds == 16  # `ceph -s` in the write-up: 16 osds
    assert inv.cluster.ceph is not None and len(inv.cluster.ceph.pools) == 3


def test_boot_wait_defaults_to_ten_minutes_and_is_bounded(tmp_path: Path) -> None:
    reference = load_inventory(REFERENCE).inventory
    assert reference is not None and reference.lab.ssh.boot_wait == 600
    text = REFERENCE.read_text()
    assert "    user: core\n" in text
    for value, ok in (("90", True), ("0", False), ("7200", False)):
        path = tmp_path / f"inventory-{value}.yaml"
        path.write_text(
            text.replace("    user: core\n", f"    user: core\n    boot_wait: {value}\n")
        )
        result = load_inventory(path)
        if ok:
            assert result.inventory is not None and result.inventory.lab.ssh.boot_wait == 90
        else:
            assert any("boot_wait" in p.path for p in result.problems), result.problems
