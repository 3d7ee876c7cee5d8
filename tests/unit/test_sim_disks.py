"""Simulated disks: sizes read from the environment, sparse files, and the node's boot lines."""

from __future__ import annotations

import json
import os
import subprocess
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
    wind = {e["kernel"]: e for e in json.loads((dirs["wind"] / disks.INDEX).read_text())}
    assert sorted(wind) == [f"/dev/sd{c}" for c in "bcdefg"]  # sdh is role none
    blob = dirs["wind"] / "disks" / wind["/dev/sdb"]["file"]
    assert blob.stat().st_size == 2**30 and blob.stat().st_blocks == 0  # sparse
    table, _ = disks.boot_tables(dirs["wind"], "/mnt")
    assert "/dev/sdb /mnt/disks/sdb" in table.splitlines()  # the boot binds it there
    assert disks.boot_tables(tmp_path / "nowhere", "/mnt") == ("", "")  # /dev untouched


def _boot(links: str, root: Path) -> None:
    """The links table, made as the node's boot (labctl/sim/node-boot.sh) makes it, under
    ``root`` instead of the node's /dev."""
    subprocess.run(
        ["sh", "-c", 'while read -r link target; do ln -sfn "$target" "$0$link"; done', root],
        input=links,
        text=True,
        check=True,
    )
    assert links  # a node with disks has links to make


def test_simulated_disks_have_the_identities_udev_gives_real_ones(tmp_path: Path) -> None:
    text = REFERENCE.read_text().replace(
        "{device: /dev/sdc, size: 900GB, type: hdd, role: osd}",
        "{device: /dev/sdc, serial: Z1W0A1B2, size: 900GB, type: hdd, role: osd}",
        1,
    )
    text = text.replace(
        "{device: /dev/sdd, size: 900GB, type: hdd, role: osd}",
        "{device: /dev/disk/by-id/wwn-0x5000c500a1b2c3d4, size: 900GB, type: hdd, role: osd}",
        1,
    )
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    inventory = require_inventory(path)
    fohn = inventory.server("fohn")
    dirs = {"fohn": tmp_path / "fohn"}
    disks.make(inventory, dirs, 2**30)
    _, links_table = disks.boot_tables(dirs["fohn"], "/mnt")
    root = tmp_path / "root"
    (root / "dev" / "disk" / "by-id").mkdir(parents=True)
    _boot(links_table, root)
    by_id = root / "dev" / "disk" / "by-id"
    links = {p.name: os.readlink(p) for p in by_id.iterdir()}
    # The inventory's serial and by-id name are the disks' own; the others are made up.
    assert links["ata-LABCTL_SIM_DISK_Z1W0A1B2"] == "../../sdc"
    assert links["wwn-0x5000c500a1b2c3d4"] == "../../sdd"  # the first kernel name not listed
    wwn, serial = disks.identity("fohn", fohn.disks[1])
    assert links[f"wwn-{wwn}"] == links[f"ata-LABCTL_SIM_DISK_{serial}"] == "../../sdb"
    assert len(links) == 2 * len([d for d in fohn.disks if d.role == "osd"])  # wwn-, ata-


def test_a_rename_moves_kernel_names_and_the_links_follow_the_disks(tmp_path: Path) -> None:
    inventory = require_inventory(REFERENCE)
    node = tmp_path / "wind"
    disks.make(inventory, {"wind": node}, 2**30)
    wind = inventory.server("wind")
    b_wwn, _ = disks.identity("wind", wind.disks[1])  # /dev/sdb
    disks.rename(node, {"/dev/sdb": "/dev/sdc", "/dev/sdc": "/dev/sdb"})
    table, links = disks.boot_tables(node, "/mnt")
    assert "/dev/sdc /mnt/disks/sdb" in table.splitlines()
    assert "/dev/sdb /mnt/disks/sdc" in table.splitlines()
    assert f"/dev/disk/by-id/wwn-{b_wwn} ../../sdc" in links.splitlines()
    disks.make(inventory, {"wind": node}, 2**30)  # sim up again: the disks keep their names
    assert "/dev/sdc /mnt/disks/sdb" in disks.boot_tables(node, "/mnt")[0].splitlines()
