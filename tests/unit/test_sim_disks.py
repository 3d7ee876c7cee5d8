"""Simulated disks: sizes read from the environment, sparse files, and the node's boot lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labctl.errors import LabctlError
from labctl.inventory import require_inventory
from labctl.sim import disks
from tests.conftest import REFERENCE


def test_sizes() -> None:
    assert disks.disk_size("3G") == 3 * 2**30
    assert disks.disk_size("2048M") == 2 * 2**30
    assert disks.disk_size(str(2**31)) == 2**31
    with pytest.raises(LabctlError, match="at least 1G"):
        disks.disk_size("512M")
    with pytest.raises(LabctlError, match="like 2G"):
        disks.disk_size("lots")


def test_each_osd_disk_is_a_sparse_file_of_its_own_node(tmp_path: Path) -> None:
    inventory = require_inventory(REFERENCE)
    dirs = {s.name: tmp_path / s.name for s in inventory.servers}
    disks.make(inventory, dirs, 2**30)
    wind = json.loads((dirs["wind"] / disks.INDEX).read_text())
    assert sorted(wind) == [f"/dev/sd{c}" for c in "bcdefg"]  # sdh is role none
    blob = dirs["wind"] / "disks" / wind["/dev/sdb"]
    assert blob.stat().st_size == 2**30 and blob.stat().st_blocks == 0  # sparse
    lines = disks.boot_lines(dirs["wind"], "/mnt")
    assert "mount --bind /mnt/disks/sdb /dev/sdb" in lines
    assert lines[1].startswith("mount -t overlay overlay -o lowerdir=/dev,")
    assert disks.boot_lines(tmp_path / "nowhere", "/mnt") == []  # no disks: /dev untouched
