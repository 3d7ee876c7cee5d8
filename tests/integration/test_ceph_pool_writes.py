"""The pools plan's pools step writes to the monitors only what the inventory changes,
the pools at once.

Each monitor write (`osd pool create`, `osd pool set`, `osd pool application enable`)
is answered once the monitors commit it, and they propose about once a second, batching
what arrived meanwhile: pool steps one after another cost about a second per write.
``ceph-pools.sh`` is the one step for every pool: one read (`osd pool ls detail`), then
each pool's writes, the pools at once (create before `application enable` within a
pool): a new pool is its create with size and autoscale mode and, unless a CephFS is
about to be made on it (`fs new` enables `cephfs` itself, shown here), its application;
an existing pool gets only what differs; a converged cluster costs the read alone; a
failing pool is named with Ceph's words while the others are done. The plan's own steps
run here under ``sh`` against a real Pacific monitor (this machine's Debian Ceph,
``tests/peers/cephmon.py``); only the node's container engine is a stand-in, which hands
the step's `exec ... /usr/bin/ceph ARGS` to the real CLI and records it.
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


def plan_step(tmp_path: Path, script: str) -> Run:
    steps = plan_runs(tmp_path)["ceph: pools"]
    (step,) = [s for s in steps if s.argv[3] == script]
    return step


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


CREATE = "osd pool create {} {} {} replicated --size 3 --autoscale_mode off"


def test_new_pools_at_once_then_a_converged_run_is_one_read(mon: CephMon, tmp_path: Path) -> None:
    step = plan_step(tmp_path, "labctl-ceph-pools")
    assert step.argv[5:] == (
        "rbd", "1024", "3", "rbd", "no",
        "cephfs_data", "32", "3", "cephfs", "yes",
        "cephfs_metadata", "32", "3", "cephfs", "yes",
    )  # fmt: skip
    status, asked, err = run_step(step, mon, tmp_path)
    assert status == 0, err
    assert asked[0] == "osd pool ls detail"
    # The pools' writes at once, in any order between pools; rbd's create first.
    assert sorted(asked[1:]) == sorted(
        [
            CREATE.format("rbd", 1024, 1024),
            "osd pool application enable rbd rbd",
            CREATE.format("cephfs_data", 32, 32),
            CREATE.format("cephfs_metadata", 32, 32),
        ]
    )
    assert asked.index("osd pool application enable rbd rbd") > asked.index(
        CREATE.format("rbd", 1024, 1024)
    )
    want = {"size": 3, "autoscale": "off", "pg_num": 32}
    assert pools(mon) == {
        "rbd": {**want, "pg_num": 1024, "apps": ["rbd"]},
        "cephfs_data": {**want, "apps": []},
        "cephfs_metadata": {**want, "apps": []},
    }
    # `fs new` enables cephfs on both its pools: no write of the pools step's needed.
    status, _, err = run_step(plan_step(tmp_path, "labctl-ceph-fs"), mon, tmp_path)
    assert status == 0, err
    assert pools(mon)["cephfs_data"]["apps"] == pools(mon)["cephfs_metadata"]["apps"] == ["cephfs"]
    before = pools(mon)
    # Run again (a roll, a changed script): the read alone, nothing written.
    status, asked, err = run_step(step, mon, tmp_path)
    assert status == 0, err
    assert asked == ["osd pool ls detail"]
    assert pools(mon) == before


def test_existing_pools_get_what_differs_and_a_refused_pool_is_named(
    mon: CephMon, tmp_path: Path
) -> None:
    step = plan_step(tmp_path, "labctl-ceph-pools")
    # Made by hand before: rbd with other values and no application, cephfs_data erasure,
    # cephfs_metadata as the inventory says but without its application (no CephFS on it).
    mon.ceph("osd", "pool", "create", "rbd", "512", "512", "replicated", "--size", "2")
    mon.ceph("osd", "pool", "create", "cephfs_data", "8", "8", "erasure")
    mon.ceph("osd", "pool", "create", *CREATE.format("cephfs_metadata", 32, 32).split()[3:])
    assert pools(mon)["rbd"] == {"size": 2, "pg_num": 512, "autoscale": "on", "apps": []}
    status, asked, err = run_step(step, mon, tmp_path)
    assert status == 1
    rbd = [c for c in asked if " rbd " in f"{c} "]
    assert rbd == [
        "osd pool set rbd size 3",
        "osd pool set rbd pg_autoscale_mode off",
        "osd pool set rbd pg_num 1024",
        "osd pool application enable rbd rbd",
    ]
    # The erasure pool: Ceph's refusal of the create, named; the others are done.
    assert sorted(set(asked) - set(rbd)) == [
        "osd pool application enable cephfs_metadata cephfs",
        CREATE.format("cephfs_data", 32, 32),
        "osd pool ls detail",
    ]
    assert err == (
        "pool cephfs_data: Error EINVAL: pool 'cephfs_data' cannot change to type replicated\n"
    )
    assert pools(mon)["rbd"] == {"size": 3, "pg_num": 1024, "autoscale": "off", "apps": ["rbd"]}
    assert pools(mon)["cephfs_metadata"]["apps"] == ["cephfs"]
    data = pools(mon)["cephfs_data"]
    assert data["pg_num"] == 8 and data["apps"] == []
