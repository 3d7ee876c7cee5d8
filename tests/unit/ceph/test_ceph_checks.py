"""The ceph checks (LAB080-LAB085) on the reference lab and on edits of it."""

from __future__ import annotations

from pathlib import Path

from labctl.inventory import load_inventory
from labctl.inventory.checks import _whole_disk
from tests.conftest import REFERENCE


def _findings(tmp_path: Path, old: str, new: str) -> list[tuple[str, str]]:
    text = REFERENCE.read_text()
    assert old in text
    path = tmp_path / "inventory.yaml"
    path.write_text(text.replace(old, new, 1))
    return [(p.check_id, p.message) for p in load_inventory(path).problems]


def test_the_reference_lab_1088_pgs_stay_under_the_limit(tmp_path: Path) -> None:
    # 1088 PGs of 3 replicas over 16 OSDs is 204 per OSD: under Ceph's 250.
    assert load_inventory(REFERENCE).problems == []
    found = _findings(
        tmp_path, "    version: 16.2.15", "    version: 16.2.15\n    max_pg_per_osd: 200"
    )
    assert found == [
        (
            "LAB081",
            "the pools ask for 1088 PGs, 3264 PG replicas over 16 OSDs: 204 per OSD, above "
            "max_pg_per_osd 200 (Ceph refuses the pool that crosses it)",
        )
    ]


def test_an_osd_host_off_the_cluster_network_is_named(tmp_path: Path) -> None:
    found = _findings(
        tmp_path,
        "{network: storage, address: 10.31.10.22}",
        "{network: mgmt, address: 10.31.0.99}",
    )
    assert (
        "LAB080",
        "wind runs Ceph daemons but has no address on cluster_network 'storage'",
    ) in found


def test_partitions_belong_to_their_whole_disk() -> None:
    assert _whole_disk("/dev/sda2") == "/dev/sda"
    assert _whole_disk("/dev/nvme0n1p3") == "/dev/nvme0n1"
    assert _whole_disk("/dev/nvme0n1") == "/dev/nvme0n1"
    assert _whole_disk("/dev/disk/by-id/wwn-0x5000-part1") == "/dev/disk/by-id/wwn-0x5000"
    assert _whole_disk("/dev/sdb") == "/dev/sdb"
