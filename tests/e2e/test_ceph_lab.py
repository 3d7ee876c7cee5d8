"""The ceph layer end to end: real Ceph 16.2 on the simulated reference lab.

`labctl bootstrap --only ceph` forms the cluster from the inventory's servers and
OSD disks (sparse files, each at its inventory path on its own node) to HEALTH_OK,
in the inventory's default `runtime: container`: every daemon is its unit's
`docker run` of the Ceph image (made by `sim up` from Debian's Ceph packages) under the
node's podman, and the layer's tools run through the same image. Then: an RBD image
written and read back with the `rbd` CLI;
a file written through ceph-fuse on one node and read through ceph-fuse on
another; a converged re-run that changes nothing; a monitor's node powered off
(the guard allows it) with quorum holding and data still readable while Ceph
reports the lost OSDs; a second monitor refused by the guard, which reads the
live quorum; the node back on and the cluster healthy again.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.inventory import load_inventory
from labctl.render import ceph as ceph_render
from labctl.sim import disks as sim_disks
from labctl.sim import engine as sim_engine
from labctl.sim import node as sim_node
from tests.e2e.conftest import NODES, Lab
from tests.labctl_process import run_labctl

pytestmark = pytest.mark.e2e

# What the test changes in the reference inventory: PG
# counts sized for 16 OSDs of a few GiB, and memory and disk settings for a machine
# that hosts the whole lab (the reference's 1,024-PG rbd pool is planned and checked
# by the unit tests; peering it here would only cost minutes).
EDITS = (
    (
        "    version: 16.2.15                 # invented: Pacific, what Debian 12 packages\n",
        "    version: 16.2.15\n"
        "    health_timeout: 300\n"
        "    config:\n"
        "      osd_memory_target: 939524096\n"
        "      bluestore_cache_autotune: false\n"
        "      bluestore_cache_size: 16777216\n"
        "      bluestore_rocksdb_options: compression=kNoCompression,max_write_buffer_number=2,"
        "min_write_buffer_number_to_merge=1,recycle_log_file_num=2,write_buffer_size=4194304,"
        "writable_file_max_buffer_size=0,compaction_readahead_size=2097152,"
        "max_background_compactions=1,max_total_wal_size=16777216\n"
        "      mgr_initial_modules: iostat\n"
        "      mgr_disabled_modules: alerts,diskprediction_local,influx,insights,localpool,"
        "mirroring,nfs,osd_perf_query,osd_support,prometheus,restful,selftest,snap_schedule,"
        "stats,telegraf,test_orchestrator,zabbix\n"
        "      osd_op_num_shards: 2\n"
        "      osd_op_num_threads_per_shard: 1\n"
        "      mon_data_avail_warn: 5\n"
        "      mon_osd_down_out_interval: 3600\n",
    ),
    ("application: rbd, size: 3, pg_num: 1024}", "application: rbd, size: 3, pg_num: 32}"),
    ("size: 3, pg_num: 32}", "size: 3, pg_num: 16}"),  # both CephFS pools
)  # fmt: skip


@pytest.fixture
def disk_size(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each simulated OSD disk's size, set before the lab comes up."""
    monkeypatch.setenv("LABCTL_SIM_DISK_SIZE", "3G")
    yield "3G"


def labctl(lab: Lab, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_labctl(*args, cwd=lab.workdir, env=lab.env(), timeout=timeout)


def on(lab: Lab, node: str, command: str, timeout: float = 60) -> str:
    # 3 s to log in: these run while Ceph's daemons load the cores
    done = lab.ssh(NODES[node], command, timeout=timeout, connect_timeout=3)
    assert done.returncode == 0, f"{node}: {command}: {done.stdout}{done.stderr}"
    return done.stdout


def status(lab: Lab) -> dict[str, Any]:
    done = labctl(lab, "ceph", "status", "-o", "json", timeout=60)
    assert done.stdout, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def wait_for(lab: Lab, ok: object, deadline: float) -> dict[str, Any]:
    end = time.monotonic() + deadline
    while True:
        report = status(lab)
        if ok(report):  # type: ignore[operator]
            return report
        assert time.monotonic() < end, json.dumps(report, indent=2)
        time.sleep(3)


def ceph_memory(lab: Lab) -> dict[str, int]:
    """RSS of the Ceph daemons on the three nodes, by program, in bytes."""
    total: dict[str, int] = {}
    for node in NODES:
        out = on(lab, node, "ps -C ceph-mon,ceph-mgr,ceph-osd,ceph-mds -o comm=,rss=")
        for line in out.splitlines():
            program, rss = line.split()
            total[program] = total.get(program, 0) + int(rss) * 1024
    return total


def bootstrap(lab: Lab) -> tuple[dict[str, Any], float]:
    start = time.monotonic()
    done = labctl(lab, "bootstrap", "-o", "json", "--only", "ceph", timeout=900)
    took = time.monotonic() - start
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    return report, took


def by_id(lab: Lab, node: str) -> dict[str, str]:
    """The node's own answer: each /dev/disk/by-id name and the disk it points at."""
    out = on(lab, node, 'for l in /dev/disk/by-id/*; do echo "${l##*/} $(readlink -f $l)"; done')
    return dict(line.split() for line in out.splitlines())


def renamed_disk_is_refused_then_wiped_by_id(lab: Lab, inventory: Path) -> dict[Path, bytes]:
    """A reinstall swaps wind's sdf and sdg: wipe: true must zero neither by its old name.

    The operator recorded each disk's serial from the node (``ls -l /dev/disk/by-id``)
    and let labctl wipe them (they hold an old cluster's data). The node then comes
    back with the two kernel names swapped, as a reinstall can. labctl refuses with
    the node's answer and both disks keep every byte; named by their by-id links,
    the same disks are wiped and become OSDs.
    """
    names = by_id(lab, "wind")
    serial = {
        dev: name.removeprefix("ata-LABCTL_SIM_DISK_")
        for name, dev in names.items()
        if name.startswith("ata-")
    }
    assert sorted(serial) == [f"/dev/sd{c}" for c in "bcdefg"], names
    blobs = sim_node.node_dir(lab.state, "wind") / "disks"
    old_data = {}
    for dev in ("/dev/sdf", "/dev/sdg"):
        blob = blobs / dev.removeprefix("/dev/")
        with blob.open("r+b") as handle:
            handle.write(f"an old cluster's OSD on {serial[dev]}".encode())
        with blob.open("rb") as handle:
            old_data[blob] = handle.read(4096)
    text = inventory.read_text()
    for dev in ("/dev/sdf", "/dev/sdg"):
        line = f"{{device: {dev}, size: 300GB, type: hdd, role: osd}}"
        assert text.count(line) == 2  # fohn's and wind's: wind's is the second
        at = text.rindex(line)
        entry = f"{{device: {dev}, serial: {serial[dev]}, size: 300GB, type: hdd, role: osd, "
        entry += "wipe: true}"
        text = text[:at] + entry + text[at + len(line) :]
    inventory.write_text(text)

    off = labctl(lab, "power", "off", "wind", "--yes", "--force")
    assert off.returncode == 0, off.stdout + off.stderr
    sim_disks.rename(
        sim_node.node_dir(lab.state, "wind"), {"/dev/sdf": "/dev/sdg", "/dev/sdg": "/dev/sdf"}
    )
    back = labctl(lab, "power", "on", "wind")
    assert back.returncode == 0, back.stdout + back.stderr
    end = time.monotonic() + 60
    link = f"/dev/disk/by-id/ata-LABCTL_SIM_DISK_{serial['/dev/sdf']}"
    while (answer := lab.ssh(NODES["wind"], f"readlink -f {link}")).stdout.strip() != "/dev/sdg":
        assert time.monotonic() < end, answer  # the old sdf's serial is at sdg now
        time.sleep(1)

    refused = labctl(lab, "bootstrap", "--only", "ceph", timeout=900)
    assert refused.returncode != 0, refused.stdout[-3000:]
    said = refused.stdout + refused.stderr
    assert (
        f"/dev/sdf is not the disk the inventory names for OSD 14 (serial {serial['/dev/sdf']}): "
        f"this node says /dev/sdf is /dev/sdf, known by id as ata-LABCTL_SIM_DISK_"
        f"{serial['/dev/sdg']} wwn-0x" in " ".join(said.split())
    ), said[-3000:]
    assert (
        "and the disk with that identity is /dev/sdg now; refused, nothing was written"
        in " ".join(said.split())
    ), said[-3000:]
    assert "Traceback" not in said
    for blob, data in old_data.items():  # not a byte written to either disk
        with blob.open("rb") as handle:
            assert handle.read(4096) == data

    # Named by identity, the same two disks are the inventory's: wiped and made OSDs.
    text = inventory.read_text()
    for dev in ("/dev/sdf", "/dev/sdg"):
        text = text.replace(
            f"{{device: {dev}, serial: {serial[dev]},",
            f"{{device: /dev/disk/by-id/ata-LABCTL_SIM_DISK_{serial[dev]},",
        )
    inventory.write_text(text)
    return old_data


def test_bootstrap_forms_ceph_with_rbd_and_cephfs_and_survives_a_node(
    disk_size: str, lab: Lab
) -> None:
    inventory = lab.workdir / "inventory.yaml"
    text = inventory.read_text()
    for old, new in EDITS:
        assert old in text, old
        text = text.replace(old, new)
    inventory.write_text(text)

    # The disks are each node's own: wind's /dev/sdh is no OSD and has no file.
    assert on(lab, "wind", "stat -c %s /dev/sdb").strip() == str(3 * 2**30)
    assert (
        "No such file" in subprocess.run(["ls", "/dev/sdb"], capture_output=True, text=True).stderr
        or not Path("/dev/sdb").is_file()
    )

    old_data = renamed_disk_is_refused_then_wiped_by_id(lab, inventory)

    report, took = bootstrap(lab)
    print(f"bootstrap --only ceph to HEALTH_OK: {took:.1f} s")
    for blob in old_data:  # named by identity, the same disks were wiped and made OSDs
        with blob.open("rb") as handle:
            assert b"an old cluster's OSD" not in handle.read(4096)
    layers = {x["layer"]: x["status"] for x in report["layers"]}
    assert layers == {"ceph": "applied"}, layers

    # Reading the cluster makes no container: `ceph status` asks through fohn's running
    # monitor container (`docker exec`), not a `docker run --rm` of the Ceph image.
    made = sim_engine.container_ids(sim_node.node_dir(lab.state, "fohn"))
    healthy = status(lab)
    assert sim_engine.container_ids(sim_node.node_dir(lab.state, "fohn")) == made
    assert healthy["health"] == "HEALTH_OK", healthy
    assert healthy["quorum"] == ["fohn", "chequita", "wind"]
    assert healthy["osds_by_host"] == {
        "fohn": {"osds": 7, "up": 7, "in": 7},
        "chequita": {"osds": 3, "up": 3, "in": 3},
        "wind": {"osds": 6, "up": 6, "in": 6},
    }
    assert {p["name"] for p in healthy["pools"]} >= {"rbd", "cephfs_data", "cephfs_metadata"}
    # Every daemon is its unit's container of the Ceph image, under the node's podman
    # (Flatcar's docker), with no runtime override from `sim env`.
    assert "LABCTL_CEPH_RUNTIME" not in lab.env()
    running = on(lab, "wind", "docker ps --format '{{.Names}} {{.Image}}'").splitlines()
    image = "quay.io/ceph/ceph:v16.2.15"
    assert f"ceph-mon-wind {image}" in running, running
    assert sum(1 for r in running if r.startswith("ceph-osd-") and r.endswith(image)) == 6
    memory = ceph_memory(lab)
    split = ", ".join(f"{p} {n / 2**20:.0f} MiB" for p, n in sorted(memory.items()))
    print(f"Ceph daemons' RSS: {sum(memory.values()) / 2**20:.0f} MiB ({split})")
    assert sum(memory.values()) < 1.5 * 2**30

    # RBD through librbd (the rbd CLI): 8 MiB in, the same 8 MiB out.
    on(lab, "fohn", "head -c 8388608 /dev/urandom > /root/blob && rbd create rbd/e2e --size 64")
    on(lab, "fohn", "rbd import --no-progress /root/blob rbd/blob")
    out = on(lab, "chequita", "rbd export --no-progress rbd/blob - | sha256sum")
    assert out.split()[0] == on(lab, "fohn", "sha256sum /root/blob").split()[0]
    bench = on(lab, "fohn", "rbd bench --io-type write --io-size 4M --io-total 64M rbd/e2e", 120)
    print(f"rbd bench write: {bench.strip().splitlines()[-1]}")

    # CephFS: written through ceph-fuse on chequita, read through ceph-fuse on wind.
    mount = "mkdir -p /srv/cephfs && ceph-fuse --id admin /srv/cephfs >/dev/null 2>&1"
    on(lab, "chequita", f"{mount} && echo written-on-chequita > /srv/cephfs/hello")
    assert on(lab, "wind", f"{mount} && cat /srv/cephfs/hello").strip() == "written-on-chequita"
    for node in ("chequita", "wind"):
        on(lab, node, "fusermount -u /srv/cephfs || umount /srv/cephfs")

    # A converged re-run changes nothing.
    again, took = bootstrap(lab)
    print(f"converged `labctl bootstrap --only ceph`: {took:.2f} s")
    changed = [
        s
        for layer in again["layers"]
        for plan in layer["plans"]
        for s in plan["steps"]
        if s["outcome"] not in ("unchanged", "skipped")
    ]
    assert changed == [], changed

    # wind down (a monitor and six OSDs): the guard allows one of three monitors.
    off = labctl(lab, "power", "off", "wind")
    assert off.returncode == 0, off.stdout + off.stderr

    def degraded_now(report: dict[str, Any]) -> bool:
        checks = {c["name"] for c in report["checks"]}
        return report["osds_by_host"]["wind"]["up"] == 0 and "PG_DEGRADED" in checks

    degraded = wait_for(lab, degraded_now, 120)
    assert degraded["quorum"] == ["fohn", "chequita"] and degraded["out_of_quorum"] == ["wind"]
    checks = {c["name"] for c in degraded["checks"]}
    assert {"MON_DOWN", "OSD_HOST_DOWN", "PG_DEGRADED"} <= checks, checks
    states = degraded["pgs"]["by_state"]
    assert any("degraded" in state for state in states), states
    out = on(lab, "fohn", "rbd export --no-progress rbd/blob - | sha256sum")
    assert out.split()[0] == on(lab, "fohn", "sha256sum /root/blob").split()[0]

    # A second monitor would break quorum: refused, and nothing was done.
    refused = labctl(lab, "power", "off", "chequita")
    assert refused.returncode == 1
    assert "Ceph monitors: 2 of 3 members must stay up" in refused.stderr, refused.stderr
    assert on(lab, "chequita", "echo up").strip() == "up"

    # Back on: the node's units start at boot and the cluster heals.
    on_again = labctl(lab, "power", "on", "wind")
    assert on_again.returncode == 0, on_again.stdout + on_again.stderr
    wait_for(lab, lambda r: r["health"] == "HEALTH_OK", 300)

    # The guard reads the live quorum: wind is on, but its monitor is stopped.
    on(lab, "wind", "systemctl stop ceph-mon-wind.service")
    wait_for(lab, lambda r: r["out_of_quorum"] == ["wind"], 60)
    # With no monitor container running on wind, its reader runs the image's own
    # `docker run --rm` and still answers (from the two monitors in quorum).
    loaded = load_inventory(inventory).inventory
    assert loaded is not None
    wind = next(s for s in loaded.servers if s.name == "wind")
    reader = ceph_render.reader(loaded, wind, "ceph", "container")
    made = sim_engine.container_ids(sim_node.node_dir(lab.state, "wind"))
    answer = json.loads(on(lab, "wind", shlex.join([*reader, "quorum_status", "-f", "json"])))
    assert answer["quorum_names"] == ["fohn", "chequita"], answer
    assert len(sim_engine.container_ids(sim_node.node_dir(lab.state, "wind")) - made) == 1
    refused = labctl(lab, "power", "off", "chequita")
    assert refused.returncode == 1
    assert "wind is on but its Ceph monitors member is unhealthy" in refused.stderr, refused.stderr
    on(lab, "wind", "systemctl start ceph-mon-wind.service")
