"""The Ceph reads' argv (``render.reader``): into the running monitor's container, else the image.

A containerised read used to be a ``run --rm`` of the Ceph image, 0.6-0.9 s of container
making before the CLI starts, twice in a converged bootstrap (the preflight's versions,
the ceph layer's health). The shipped ``ceph-reader.sh`` runs here for real under ``sh``
with a stand-in for the node's container engine that records how it was called (the
real engine's answer to the same argv is proved on the simulated lab:
tests/e2e/test_ceph_lab.py asks the cluster and no container is made for it).
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from labctl.ceph.cluster import CephSession
from labctl.inventory import load_inventory
from labctl.inventory.model import Inventory
from labctl.render import ceph as render
from tests.conftest import REFERENCE


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    loaded = load_inventory(REFERENCE).inventory
    assert loaded is not None
    return loaded


def engine(tmp_path: Path, running: str) -> str:
    """A stand-in ``docker``: ``inspect`` answers ``running``; every call is recorded."""
    path = tmp_path / "docker"
    path.write_text(
        f'#!/bin/sh\necho "$*" >> {tmp_path}/calls\n[ "$1" = inspect ] && echo {running}\nexit 0\n'
    )
    path.chmod(0o755)
    return str(path)


def read(inventory: Inventory, tmp_path: Path, running: str) -> list[str]:
    """Runs the reader for fohn's ``ceph`` as CephCli would, with the stand-in engine."""
    fohn = next(s for s in inventory.servers if s.name == "fohn")
    argv = render.reader(inventory, fohn, "ceph", "container")
    assert argv[4] == "/usr/bin/docker"  # Flatcar's engine: replaced by the stand-in
    argv[4] = engine(tmp_path, running)
    run_at = argv.index("run")  # `run --rm`'s argv starts with the engine too
    argv[run_at - 1] = argv[4]
    done = subprocess.run(
        [*argv, "health", "detail", "-f", "json"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return (tmp_path / "calls").read_text().splitlines()


def test_a_running_monitor_container_answers_the_read(inventory: Inventory, tmp_path: Path) -> None:
    calls = read(inventory, tmp_path, "true")
    assert calls == [
        "inspect --format {{.State.Running}} ceph-mon-fohn",
        "exec --interactive ceph-mon-fohn /usr/bin/ceph health detail -f json",
    ]


def test_without_a_running_monitor_the_image_answers(inventory: Inventory, tmp_path: Path) -> None:
    calls = read(inventory, tmp_path, "false")
    assert len(calls) == 2 and calls[0].startswith("inspect "), calls
    assert calls[1].startswith("run --rm --interactive --network host"), calls
    assert calls[1].endswith("quay.io/ceph/ceph:v16.2.15 health detail -f json"), calls


def test_each_runtime_reads_through_its_own_engine(inventory: Inventory) -> None:
    fohn = next(s for s in inventory.servers if s.name == "fohn")
    assert render.reader(inventory, fohn, "ceph", "host") == ["/usr/bin/ceph"]
    fcos = dataclasses.replace(fohn, os=dataclasses.replace(fohn.os, distribution="fedora-coreos"))
    argv = render.reader(inventory, fcos, "ceph", "container")
    assert argv[4:6] == ["/usr/bin/podman", "ceph-mon-fohn"]
    assert argv[8:10] == ["/usr/bin/podman", "run"]


def test_the_cluster_session_reads_through_the_reader(inventory: Inventory, tmp_path: Path) -> None:
    session = CephSession(inventory, tmp_path)
    assert all(m.ceph[3] == "ceph-reader" for m in session.cli.mons)
    assert [m.name for m in session.cli.mons] == ["fohn", "chequita", "wind"]
