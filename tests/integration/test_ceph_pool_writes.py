"""The pools plan's pool steps write to the monitors only what the inventory changes.

Each monitor write (`osd pool create`, `osd pool set`, `osd pool application enable`)
is answered once the monitors commit it, and they propose at most about once a second,
so a pool cost about a second per write: four for a new pool, and the same four again
on every re-run of the step (a Reef roll, a changed script), three of them commits
even when nothing changed. ``ceph-pool.sh`` now makes a new pool in two writes (its
size and autoscale mode in `osd pool create`) and no read, and, for a pool that
exists, writes only what differs from the inventory after one read (`osd pool ls
detail`), a PG count included. The plan's own steps run here under ``sh`` against a
real Pacific monitor (this machine's Debian Ceph, ``tests/peers/cephmon.py``); only the
node's container engine is a stand-in, which hands the step's `exec ... /usr/bin/ceph
ARGS` to the real CLI and records it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.engine.actions import Run
from tests.peers.cephmon import CephMon, running_ceph_mon
from tests.unit.ceph.test_pools_through_monitor import plan_runs

pytestmark = pytest.mark.integration
EXEC = "exec --interactive ceph-mon-fohn /usr/bin/ceph "


@pytest.fixture
def mon(tmp_path: Path) -> Iterator[CephMon]:
    with running_ceph_mon(tmp_path / "ceph") as cluster:
        yield cluster


def pool_steps(tmp_path: Path) -> dict[str, Run]:
    steps = plan_runs(tmp_path)["ceph: pools"]
    return {s.argv[5]: s for s in steps if s.argv[3] == "labctl-ceph-pool"}


def run_step(step: Run, mon: CephMon, tmp_path: Path) -> tuple[int, list[str], str]:
    """The step's argv here, its engine the stand-in: its exit status, the ceph
    commands it asked (in order) and its stderr."""
    log = tmp_path / "asked"
    log.unlink(missing_ok=True)
    docker = tmp_path / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        '[ "$1" = inspect ] && { echo true; exit 0; }\n'
        f'echo "$*" >> {log}\n'
        "shift 4\n"
        f'exec ceph -c {mon.conf} "$@"\n'
    )
    docker.chmod(0o755)
    argv = [w.replace("/usr/bin/docker", str(docker)) for w in step.argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    asked = log.read_text().splitlines() if log.exists() else []
    assert all(c.startswith(EXEC) for c in asked), asked
    return done.returncode, [c.removeprefix(EXEC) for c in asked], done.stderr


def pools(mon: CephMon) -> dict[str, dict[str, object]]:
    found = json.loads(mon.ceph("osd", "pool", "ls", "detail", "-f", "json"))
    return {
        p["pool_name"]: {
            "size": p["size"],
            "pg_num": p.get("pg_num_target", p["pg_num"]),
            "autoscale": p["pg_autoscale_mode"],
            "apps": sorted(p["application_metadata"]),
        }
        for p in found
    }


def test_a_new_pool_is_two_writes_and_a_pool_as_the_inventory_says_none(
    mon: CephMon, tmp_path: Path
) -> None:
    steps = pool_steps(tmp_path)
    assert list(steps) == ["rbd", "cephfs_data", "cephfs_metadata"]
    for name, step in steps.items():
        status, asked, err = run_step(step, mon, tmp_path)
        assert status == 0, err
        pg = step.argv[6]
        # Made now by the create, with what it was given: no read needed.
        assert asked == [
            f"osd pool create {name} {pg} {pg} replicated --size 3 --autoscale_mode off",
            f"osd pool application enable {name} {step.argv[8]}",
        ]
    want = {"size": 3, "autoscale": "off"}
    assert pools(mon) == {
        "rbd": {**want, "pg_num": 1024, "apps": ["rbd"]},
        "cephfs_data": {**want, "pg_num": 32, "apps": ["cephfs"]},
        "cephfs_metadata": {**want, "pg_num": 32, "apps": ["cephfs"]},
    }
    before = pools(mon)
    # Run again (a roll, a changed script): a create that changes nothing and one read.
    for name, step in steps.items():
        status, asked, err = run_step(step, mon, tmp_path)
        assert status == 0, err
        pg = step.argv[6]
        assert asked == [
            f"osd pool create {name} {pg} {pg} replicated --size 3 --autoscale_mode off",
            "osd pool ls detail",
        ]
    assert pools(mon) == before


def test_an_existing_pool_gets_what_differs_and_one_of_the_other_type_is_refused(
    mon: CephMon, tmp_path: Path
) -> None:
    steps = pool_steps(tmp_path)
    # Made by hand before: rbd with other values and no application, cephfs_data erasure.
    mon.ceph("osd", "pool", "create", "rbd", "512", "512", "replicated", "--size", "2")
    mon.ceph("osd", "pool", "create", "cephfs_data", "8", "8", "erasure")
    assert pools(mon)["rbd"] == {"size": 2, "pg_num": 512, "autoscale": "on", "apps": []}
    status, asked, err = run_step(steps["rbd"], mon, tmp_path)
    assert status == 0, err
    assert asked[1:] == [
        "osd pool ls detail",
        "osd pool set rbd size 3",
        "osd pool set rbd pg_autoscale_mode off",
        "osd pool set rbd pg_num 1024",
        "osd pool application enable rbd rbd",
    ]
    assert pools(mon)["rbd"] == {"size": 3, "pg_num": 1024, "autoscale": "off", "apps": ["rbd"]}
    status, asked, err = run_step(steps["cephfs_data"], mon, tmp_path)
    assert status != 0 and "cannot change to type replicated" in err, err
    assert asked == ["osd pool create cephfs_data 32 32 replicated --size 3 --autoscale_mode off"]
    data = pools(mon)["cephfs_data"]
    assert data["pg_num"] == 8 and data["apps"] == []
