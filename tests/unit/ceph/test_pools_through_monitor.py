"""The pools plan and ``osd new`` ask the cluster through the running monitor's container.

Each ``$ceph`` in the pools plan's scripts (OSDs up and in, require-osd-release, each
pool, each CephFS) and ``osd new`` in an OSD's preparation used to be a ``run --rm`` of
the Ceph image: 0.6-0.9 s of container making before the CLI starts, five times per
pool. They call ``ceph_reader`` now (``data/scripts/ceph-reader.sh``): an ``exec`` of
``/usr/bin/ceph`` itself (the Reef image has no shell) in the node's monitor container.
The plan's own steps run here for real under ``sh``, with a stand-in for the node's
container engine that records every call and answers as a healthy cluster would; the
real engine and cluster answer the same argv on the simulated lab
(tests/e2e/test_ceph_lab.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from labctl.ceph.keys import CephKeys, cephx_key
from labctl.engine.actions import Run
from labctl.engine.facts import Facts
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan
from labctl.inventory import require_inventory
from labctl.layers.ceph import OSD_PREPARE, CephLayer
from labctl.render import ceph as render
from tests.conftest import REFERENCE

# What the stand-in `ceph` answers, by the words it is asked.
ANSWERS = (
    "case $* in\n"
    '  *"osd stat"*) echo \'{"num_osds":16,"num_up_osds":16,"num_in_osds":16}\' ;;\n'
    '  *"osd versions"*) echo \'{"ceph version 18.2.7 (6b0e988) reef (stable)": 16}\' ;;\n'
    '  *"osd dump"*) echo \'{"require_osd_release":"reef"}\' ;;\n'
    '  *"fs ls"*) echo "[]" ;;\n'
    # As Ceph answers a pool it made (on stderr).
    '  *"osd pool create"*) while [ "$1" != create ]; do shift; done\n'
    "    echo \"pool '$2' created\" >&2 ;;\n"
    "esac\n"
)


def engine(tmp_path: Path, running: str) -> str:
    """A stand-in ``docker``: ``inspect`` answers ``running``, an exec or a run answers
    as the cluster would; every call is recorded."""
    path = tmp_path / "docker"
    path.write_text(
        f'#!/bin/sh\necho "$*" >> {tmp_path}/calls\n'
        f'[ "$1" = inspect ] && {{ echo {running}; exit 0; }}\n{ANSWERS}exit 0\n'
    )
    path.chmod(0o755)
    return str(path)


def ceph_plans(tmp_path: Path, inventory_path: Path = REFERENCE) -> list[Plan]:
    """The ceph layer's plans of ``inventory_path``, its keys fixed stand-ins."""
    inventory = require_inventory(inventory_path)
    keys = {e: cephx_key(bytes([i]) * 16, 1_700_000_000)
            for i, e in enumerate(render.entities(inventory))}  # fmt: skip
    ctx = LayerContext(
        inventory, inventory_path, tmp_path / "state",
        facts=Facts.of(CephKeys(tuple(sorted(keys.items())))),
    )  # fmt: skip
    return list(CephLayer().plans(ctx))


def plan_runs(tmp_path: Path, inventory_path: Path = REFERENCE) -> dict[str, list[Run]]:
    return {
        p.layer: [s.action for s in p.steps if isinstance(s.action, Run)]
        for p in ceph_plans(tmp_path, inventory_path)
    }


def run_here(step: Run, docker: str) -> subprocess.CompletedProcess[str]:
    """The step's argv on this machine, the node's engine replaced by the stand-in."""
    argv = [w.replace("/usr/bin/docker", docker) for w in step.argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls"
    return log.read_text().splitlines() if log.exists() else []


def test_every_pools_step_asks_through_the_first_monitors_container(tmp_path: Path) -> None:
    docker = engine(tmp_path, "true")
    steps = plan_runs(tmp_path)["ceph: pools"]
    assert [s.host for s in steps] == ["fohn"] * len(steps)
    asked: list[list[str]] = []
    for step in steps:
        before = len(calls(tmp_path))
        done = run_here(step, docker)
        assert done.returncode == 0, (step.argv[3], done.stderr)
        asked.append(calls(tmp_path)[before:])
    made = [c for step in asked for c in step if not c.startswith("inspect ")]
    assert made and all(
        c.startswith("exec --interactive ceph-mon-fohn /usr/bin/ceph ") for c in made
    )
    assert not any(c.startswith("run ") for step in asked for c in step)
    # All pools in one step: one read, then each pool's writes, the pools at once (in any
    # order between pools); the CephFS's pools get their application from `fs new`.
    pools = [c.removeprefix("exec --interactive ceph-mon-fohn /usr/bin/ceph ") for c in asked[2]
             if c.startswith("exec ")]  # fmt: skip
    assert pools[0] == "osd pool ls detail"
    assert sorted(pools[1:]) == [
        "osd pool application enable rbd rbd",
        "osd pool create cephfs_data 32 32 replicated --size 3 --autoscale_mode off",
        "osd pool create cephfs_metadata 32 32 replicated --size 3 --autoscale_mode off",
        "osd pool create rbd 1024 1024 replicated --size 3 --autoscale_mode off",
    ]
    assert pools.index("osd pool application enable rbd rbd") > pools.index(
        "osd pool create rbd 1024 1024 replicated --size 3 --autoscale_mode off"
    )
    # The CLI's failure is the step's: the exec's exit status is the CLI's.
    failing = tmp_path / "failing"
    failing.write_text('#!/bin/sh\n[ "$1" = inspect ] && { echo true; exit 0; }\nexit 7\n')
    failing.chmod(0o755)
    assert run_here(steps[2], str(failing)).returncode != 0


def test_without_a_running_monitor_the_pools_steps_start_the_image(tmp_path: Path) -> None:
    docker = engine(tmp_path, "false")
    step = plan_runs(tmp_path)["ceph: pools"][2]
    done = run_here(step, docker)
    assert done.returncode == 0, done.stderr
    made = [c for c in calls(tmp_path) if not c.startswith("inspect ")]
    assert len(made) == 5 and all(c.startswith("run --rm --interactive ") for c in made), made


def test_osd_new_asks_through_the_monitor_and_mkfs_keeps_its_own_container(
    tmp_path: Path,
) -> None:
    osds = plan_runs(tmp_path)["ceph: osds"]
    # One step per node makes its OSDs at once, each by the OSD script.
    prepares = [r for r in osds if r.argv[3:4] == ("labctl-ceph-osds-prepare",)]
    assert [r.host for r in prepares] == ["fohn", "chequita", "wind"]
    assert sum(len(r.argv[9:]) // 7 for r in prepares) == 16
    for step in prepares:  # every OSD server of the reference lab runs a monitor
        assert step.argv[4] == OSD_PREPARE
        ceph, osd, tool = step.argv[5:8]
        assert ceph.split()[:3] == ["ceph_reader", "/usr/bin/docker", f"ceph-mon-{step.host}"]
        assert osd.split()[:3] == tool.split()[:3] == ["/usr/bin/docker", "run", "--rm"]
    # The host runtime has no container: the node's own ceph, as before.
    text = REFERENCE.read_text()
    line = "    public_network: public\n"
    assert text.count(line) == 1
    path = tmp_path / "host.yaml"
    path.write_text(text.replace(line, line + "    runtime: host\n"))
    runs = plan_runs(tmp_path, path)
    assert {s.argv[4] for s in runs["ceph: pools"]} == {"/usr/bin/ceph"}
    osd_new = {
        r.argv[5] for r in runs["ceph: osds"] if r.argv[3:4] == ("labctl-ceph-osds-prepare",)
    }
    assert osd_new == {"/usr/bin/ceph"}
