"""A node's OSDs are made at once, against a real monitor with Ceph's real mkfs.

The OSD plan made a node's OSDs one after another, each its own step (`osd new`, then
`ceph-osd --mkfs`): 2.9-8.5 s each, 29 s of fohn's seven in a bootstrap from nothing,
the whole of the plan's longest target. Most of it is waiting: the monitors' commit of
`osd new` and bluestore's mkfs syncing its new store. The plan's one step per node
(``ceph-osds-prepare.sh``) runs the node's preparations side by side; here wind's step of
the reference plan runs under ``sh`` against a real Pacific monitor
(``tests/peers/cephmon.py``) with this machine's `ceph-osd --mkfs` on sparse files
standing for the disks; only the node's container engine is a stand-in, which hands
`exec`/`run ... --entrypoint PROGRAM IMAGE ARGS` to the real program and records when
each ran. A disk holding data is refused and named while the others are made.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.engine.actions import PutFile, Run
from tests.peers.cephmon import CephMon, running_ceph_mon
from tests.unit.ceph.test_pools_through_monitor import ceph_plans

pytestmark = pytest.mark.integration
OSD_DIR = "/var/lib/ceph/osd/"


@pytest.fixture
def mon(tmp_path: Path) -> Iterator[CephMon]:
    with running_ceph_mon(tmp_path / "ceph") as cluster:
        yield cluster


def wind_osds(tmp_path: Path) -> tuple[Run, list[PutFile]]:
    """wind's OSD step of the reference plan and its OSDs' keyrings."""
    plan = next(p for p in ceph_plans(tmp_path) if p.layer == "ceph: osds")
    actions = [s.action for s in plan.steps if s.action.host == "wind"]
    (step,) = [
        a for a in actions if isinstance(a, Run) and a.argv[3:4] == ("labctl-ceph-osds-prepare",)
    ]
    keyrings = [a for a in actions if isinstance(a, PutFile) and a.path.startswith(OSD_DIR)]
    return step, keyrings


def test_a_nodes_osds_are_made_at_once_and_a_refused_disk_is_named(
    mon: CephMon, tmp_path: Path
) -> None:
    step, keyrings = wind_osds(tmp_path)
    ids = step.argv[9::7]
    assert ids == ("10", "11", "12", "13", "14", "15")
    # What the node holds: the OSDs' keyrings (the plan's steps before), the disks.
    osd_root, disks = tmp_path / "osd", tmp_path / "dev"
    disks.mkdir()
    for put in keyrings:
        path = osd_root / put.path.removeprefix(OSD_DIR)
        path.parent.mkdir(parents=True)
        path.write_bytes(put.content)
    for name in ("sdb", "sdc", "sdd", "sde", "sdf", "sdg"):
        with (disks / name).open("wb") as disk:
            disk.truncate(10 * 2**30)
    for name in ("sdc", "sde"):  # OSD 11's and 13's: an old filesystem
        with (disks / name).open("r+b") as old:
            old.seek(4096)
            old.write(b"an old ext4 superblock")
    # The bootstrap-osd key the plan's keyring holds, known to the monitor.
    bootstrap = mon.ceph(
        "auth", "get-or-create", "client.bootstrap-osd", "mon", "allow profile bootstrap-osd"
    )
    admin = tmp_path / "ceph" / "admin.keyring"
    admin.write_text(admin.read_text() + bootstrap)
    conf = tmp_path / "osd.conf"
    conf.write_text(mon.conf.read_text() + f"[osd]\nkeyring = {osd_root}/ceph-$id/keyring\n")
    log = tmp_path / "ran"
    docker = tmp_path / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        "case $1 in\n"
        "  inspect) echo true; exit 0 ;;\n"
        "  exec) prog=$4; shift 4 ;;\n"
        '  run) while [ "$1" != --entrypoint ]; do shift; done; prog=$2; shift 3 ;;\n'
        "esac\n"
        "s=$(date +%s%N)\n"
        f'"${{prog##*/}}" -c {conf} "$@"\n'
        "rc=$?\n"
        f'echo "$s $(date +%s%N) ${{prog##*/}} $*" >> {log}\n'
        "exit $rc\n"
    )
    docker.chmod(0o755)

    def here(word: str) -> str:
        if word.startswith(OSD_DIR):
            return str(osd_root / word.removeprefix(OSD_DIR))
        if word.startswith("/dev/sd"):
            return str(disks / word.removeprefix("/dev/"))
        return word.replace("/usr/bin/docker", str(docker))

    done = subprocess.run(
        [here(w) for w in step.argv], capture_output=True, text=True, timeout=240, check=False
    )
    # The refused disks named, the step failed with the OSD script's status, the others
    # made. The first refused OSD's words come last and whole (a failed step's report
    # keeps the end of its stderr), the other's last line before them.
    assert done.returncode == 3, done.stderr
    refused = "holds data (its first MiB is not blank): refused and left alone; set wipe: true"
    lines = done.stderr.splitlines()
    assert lines[0].startswith(f"OSD 13: {disks / 'sde'} {refused}"), done.stderr
    assert lines[1].startswith(f"OSD 11: {disks / 'sdc'} {refused}"), done.stderr
    assert len(lines) == 2, done.stderr
    assert mon.ceph("osd", "ls").split() == ["10", "12", "14", "15"]
    for osd in ("10", "12", "14", "15"):
        assert (osd_root / f"ceph-{osd}" / "mkfs_done").exists()
    for name in ("sdc", "sde"):
        with (disks / name).open("rb") as head:
            assert b"an old ext4 superblock" in head.read(8192)
    # At once: every mkfs started before the first one ended.
    mkfs = [line.split(" ", 2) for line in log.read_text().splitlines() if " --mkfs " in line]
    assert len(mkfs) == 4, mkfs
    assert max(int(s) for s, _, _ in mkfs) < min(int(e) for _, e, _ in mkfs), mkfs
    # Run again: the made OSDs are done (nothing asked), the refusal stands.
    log.unlink()
    again = subprocess.run(
        [here(w) for w in step.argv], capture_output=True, text=True, timeout=240, check=False
    )
    assert again.returncode == 3 and again.stderr.startswith("OSD 13: "), again.stderr
    # Only the refused disks' labels are read again (a disk holding data may be ours).
    asked = sorted(line.split(" ", 2)[2] for line in log.read_text().splitlines())
    assert asked == [
        f"ceph-bluestore-tool show-label --dev {disks / name}" for name in ("sdc", "sde")
    ], asked
