"""The OSD script's decisions on a disk, run for real by sh with stand-ins for Ceph's tools.

Which disks it refuses is the point: a disk holding anything is left alone unless
the inventory says wipe. The stand-ins record what they were asked; the real tools
run in the e2e test.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from labctl.layers.ceph import OSD_PREPARE

UUID = "1194a161-df03-545f-8f78-9c95734c93ca"
KEY = "AQAA8VNlAAAAABAAAwMDAwMDAwMDAwMDAwMDAw=="


def stand_in(path: Path, body: str) -> str:
    path.write_text(f'#!/bin/sh\necho "$(basename $0) $*" >> {path.parent}/calls\n{body}\n')
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def tools(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    return {
        "ceph": stand_in(bin_dir / "ceph", f"cat > {bin_dir}/stdin"),
        # mkfs leaves what bluestore leaves: mkfs_done and the OSD's uuid in its directory.
        "ceph-osd": stand_in(
            bin_dir / "ceph-osd",
            "while [ $# -gt 0 ]; do\n"
            "  case $1 in --osd-data) d=$2;; --osd-uuid) u=$2;; esac; shift\n"
            "done\n"
            'echo yes > "$d/mkfs_done"; echo "$u" > "$d/fsid"',
        ),
        "ceph-bluestore-tool": stand_in(
            bin_dir / "ceph-bluestore-tool", '[ -f "$3.label" ] && cat "$3.label" || exit 1'
        ),
    }


def prepare(
    tools: dict[str, str],
    tmp_path: Path,
    disk: Path,
    wipe: str = "no",
    wwn: str = "",
    serial: str = "",
) -> subprocess.CompletedProcess[str]:
    data = tmp_path / "osd" / "ceph-3"
    data.mkdir(parents=True, exist_ok=True)
    (data / "keyring").write_text(f"[osd.3]\n\tkey = {KEY}\n")
    argv = ["sh", "-c", OSD_PREPARE, "prepare", tools["ceph"], tools["ceph-osd"],
            tools["ceph-bluestore-tool"], "3", UUID, str(disk), wipe, str(data),
            str(tmp_path / "by-id"), wwn, serial]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "bin" / "calls"
    return log.read_text().splitlines() if log.exists() else []


def blank_disk(tmp_path: Path) -> Path:
    disk = tmp_path / "sdb"
    with disk.open("wb") as handle:
        handle.truncate(64 * 2**20)
    return disk


def test_a_blank_disk_becomes_the_osd(tools: dict[str, str], tmp_path: Path) -> None:
    done = prepare(tools, tmp_path, blank_disk(tmp_path))
    assert done.returncode == 0, done.stderr
    made = calls(tmp_path)
    # A blank first MiB holds no bluestore label: no ceph-bluestore-tool container to
    # read one, only the OSD's registration and its mkfs.
    assert len(made) == 2, made
    assert made[0] == f"ceph --name client.bootstrap-osd osd new {UUID} 3 -i -"
    assert (tmp_path / "bin" / "stdin").read_text() == f'{{"cephx_secret": "{KEY}"}}'
    assert made[1].startswith(f"ceph-osd --mkfs -i 3 --osd-uuid {UUID} --osd-data ")
    assert made[1].endswith(f"--bluestore_block_path {tmp_path / 'sdb'}")
    # Run again: done already, nothing asked.
    before = len(calls(tmp_path))
    assert prepare(tools, tmp_path, tmp_path / "sdb").returncode == 0
    assert len(calls(tmp_path)) == before


def test_a_disk_holding_data_is_refused_and_left_alone(
    tools: dict[str, str], tmp_path: Path
) -> None:
    disk = blank_disk(tmp_path)
    with disk.open("r+b") as handle:
        handle.seek(4096)
        handle.write(b"an old ext4 superblock")
    done = prepare(tools, tmp_path, disk)
    assert done.returncode == 3
    assert "holds data" in done.stderr and "wipe: true" in done.stderr
    assert b"an old ext4 superblock" in disk.read_bytes()
    assert not any(c.startswith(("ceph ", "ceph-osd ")) for c in calls(tmp_path))


def test_wipe_lets_labctl_overwrite_it(tools: dict[str, str], tmp_path: Path) -> None:
    disk = blank_disk(tmp_path)
    with disk.open("r+b") as handle:
        handle.write(b"another cluster's OSD")
    done = prepare(tools, tmp_path, disk, wipe="yes")
    assert done.returncode == 0, done.stderr
    assert b"another cluster's OSD" not in disk.read_bytes()
    made = calls(tmp_path)
    assert made[0].startswith("ceph-bluestore-tool show-label --dev "), made  # not ours
    assert any(c.startswith("ceph-osd --mkfs") for c in made)


def test_a_disk_with_this_osds_label_is_taken_back(tools: dict[str, str], tmp_path: Path) -> None:
    disk = blank_disk(tmp_path)
    with disk.open("r+b") as handle:  # bluestore's label: the disk's first block
        handle.write(f"bluestore block device\n{UUID}\n".encode())
    Path(f"{disk}.label").write_text(f'{{"{disk}": {{"osd_uuid": "{UUID}"}}}}')
    done = prepare(tools, tmp_path, disk)
    assert done.returncode == 0, done.stderr
    assert any("prime-osd-dir" in c for c in calls(tmp_path))
    assert not any(c.startswith(("ceph ", "ceph-osd ")) for c in calls(tmp_path))


def test_a_missing_disk_is_named(tools: dict[str, str], tmp_path: Path) -> None:
    done = prepare(tools, tmp_path, tmp_path / "sdz")
    assert done.returncode == 3
    assert f"{tmp_path / 'sdz'} does not exist on this node, so OSD 3 cannot be made" in done.stderr


def by_id(tmp_path: Path, links: dict[str, str]) -> None:
    """udev's links as a node has them: name -> ../<disk file>."""
    folder = tmp_path / "by-id"
    folder.mkdir(exist_ok=True)
    for name, target in links.items():
        (folder / name).symlink_to(f"../{target}")


def another_osds_disk(tmp_path: Path, name: str) -> Path:
    disk = tmp_path / name
    with disk.open("wb") as handle:
        handle.truncate(64 * 2**20)
        handle.write(b"bluestore block device: osd.7 of this cluster")
    return disk


# A reinstall swapped the kernel names: what the inventory calls sdb (wwn ...01) is
# now sdc, and sdb is the disk of another OSD. wipe: true must not touch it.
def test_a_renamed_disk_is_refused_with_the_nodes_answer(
    tools: dict[str, str], tmp_path: Path
) -> None:
    sdb = another_osds_disk(tmp_path, "sdb")
    blank_sdc = tmp_path / "sdc"
    blank_sdc.write_bytes(b"")
    by_id(tmp_path, {"wwn-0x5000c50000000001": "sdc", "wwn-0x5000c50000000002": "sdb",
                     "ata-ST1000NM0033-9ZM173_Z1W0B": "sdb"})  # fmt: skip
    before = sdb.read_bytes()
    done = prepare(tools, tmp_path, sdb, wipe="yes", wwn="0x5000c50000000001")
    assert done.returncode == 3
    # The sentence comes last: labctl reports the tail of a failed command's stderr.
    assert done.stderr.splitlines()[-1] == (
        f"{sdb} is not the disk the inventory names for OSD 3 (wwn 0x5000c50000000001): "
        f"this node says {sdb} is {sdb}, known by id as ata-ST1000NM0033-9ZM173_Z1W0B "
        f"wwn-0x5000c50000000002, and the disk with that identity is {blank_sdc} now; "
        "refused, nothing was written (a reinstall or a new disk may have renamed it)"
    ), done.stderr
    assert f"  wwn-0x5000c50000000001 -> {blank_sdc}" in done.stderr  # every by-id link
    assert sdb.read_bytes() == before
    assert calls(tmp_path) == []  # not even a label read


def test_a_serial_that_is_not_the_devices_is_refused(tools: dict[str, str], tmp_path: Path) -> None:
    sdb = another_osds_disk(tmp_path, "sdb")
    by_id(tmp_path, {"ata-ST1000NM0033-9ZM173_Z1W0B": "sdb"})
    before = sdb.read_bytes()
    done = prepare(tools, tmp_path, sdb, wipe="yes", serial="Z1W0A")
    assert done.returncode == 3
    assert "(serial Z1W0A): this node says" in done.stderr, done.stderr
    assert "the disk with that identity is not on this node; refused" in done.stderr
    assert sdb.read_bytes() == before and calls(tmp_path) == []
    # A serial that is only the end of another one is no match either.
    done = prepare(tools, tmp_path, sdb, wipe="yes", serial="W0B")
    assert done.returncode == 3 and sdb.read_bytes() == before


def test_the_disk_the_node_agrees_on_is_wiped(tools: dict[str, str], tmp_path: Path) -> None:
    sdb = another_osds_disk(tmp_path, "sdb")
    by_id(tmp_path, {"wwn-0x5000c50000000001": "sdb", "ata-ST1000NM0033-9ZM173_Z1W0A": "sdb"})
    done = prepare(tools, tmp_path, sdb, wipe="yes", wwn="0x5000c50000000001", serial="Z1W0A")
    assert done.returncode == 0, done.stderr
    assert b"osd.7" not in sdb.read_bytes()
    assert any(c.startswith("ceph-osd --mkfs") for c in calls(tmp_path))


def test_a_by_id_name_the_node_lacks_is_refused_with_its_disks(
    tools: dict[str, str], tmp_path: Path
) -> None:
    sdb = another_osds_disk(tmp_path, "sdb")
    by_id(tmp_path, {"wwn-0x5000c50000000002": "sdb"})
    done = prepare(tools, tmp_path, tmp_path / "by-id" / "wwn-0x5000c50000000001", wipe="yes")
    assert done.returncode == 3
    assert "does not exist on this node" in done.stderr
    assert f"this node's disks by id (ls -l {tmp_path / 'by-id'}):" in done.stderr
    assert f"  wwn-0x5000c50000000002 -> {sdb}" in done.stderr
    assert b"osd.7" in sdb.read_bytes()
