"""The etcd image made here, under the real podman with the settings a simulated node gets.

No lab is brought up: podman runs in a mount and PID namespace of the test's own
(``unshare``), with the node's own ``storage.conf`` and ``containers.conf`` as
``labctl/sim/engine.py`` writes them and its storage in the test's folder. The archive
is loaded as a node's boot loads it, and the container runs the image's etcd and
etcdctl under the inventory's image name, through the docker shim Flatcar's units call.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.inventory import require_inventory
from labctl.render import ceph as render_ceph
from labctl.sim import ceph_image, engine
from tests.conftest import REFERENCE

pytestmark = pytest.mark.integration
IMAGE = "quay.io/coreos/etcd:v3.4.23"


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    assert os.geteuid() == 0, "podman's storage here needs root (CI runs as root)"
    assert engine.available(), "podman and runc are missing: scripts/setup.sh installs them"
    monkeypatch.setenv("LABCTL_KUBE_CACHE", str(tmp_path / "cache" / "kubernetes"))
    d = tmp_path / "node"
    engine.prepare(d, str(d), [engine.build(engine.etcd_image(IMAGE))])
    yield d
    engine.release_cgroups(d, Path("/sys/fs/cgroup"))
    shutil.rmtree(d / "podman" / "storage", ignore_errors=True)


def in_node(d: Path, script: str) -> subprocess.CompletedProcess[str]:
    """``script`` in a mount and PID namespace of its own, podman set as the node's is."""
    env = {
        **os.environ,
        "CONTAINERS_STORAGE_CONF": str(d / "podman" / "storage.conf"),
        "CONTAINERS_CONF": str(d / "podman" / "containers.conf"),
        "PATH": f"{d / 'podman' / 'bin'}:{os.environ['PATH']}",
    }
    argv = ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
    return subprocess.run(
        [*argv, "sh", "-ec", script], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_archive_loads_and_runs_etcd_under_the_inventorys_image_name(node: Path) -> None:
    # The boot's load (labctl/sim/node-boot.sh's loop over the images table; not its /etc
    # and /usr/bin mounts, which are the node's to make).
    images = engine.boot_images(node).strip().split()
    load = f"podman image exists {images[0]} || podman load -q -i {images[1]} >/dev/null"
    done = in_node(
        node,
        f"""
        mount -t tmpfs tmpfs /run  # as a node's boot does: podman's run state is its own
        {load}
        podman images --format '{{{{.Repository}}}}:{{{{.Tag}}}}'
        docker run --rm --network none {IMAGE} /usr/local/bin/etcd --version
        docker run --rm --network none {IMAGE} /usr/local/bin/etcdctl version
        """,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == IMAGE
    assert "etcd Version: 3.4.23" in lines
    assert "etcdctl version: 3.4.23" in lines


CEPH_IMAGE = "quay.io/ceph/ceph:v16.2.15"


def test_the_ceph_image_runs_every_program_the_units_start_from_the_shared_store(
    tmp_path: Path,
) -> None:
    # Made (or found) in the build cache as `sim up` makes it, loaded once into the
    # read-only store; the node's podman lists that store and loads nothing itself.
    assert os.geteuid() == 0, "podman's storage here needs root (CI runs as root)"
    archive = ceph_image.build(CEPH_IMAGE, engine.image_dir())
    store = ceph_image.store(CEPH_IMAGE, archive)
    d = tmp_path / "node"
    engine.prepare(d, str(d), [], (str(store),))
    assert engine.boot_images(d) == ""
    # The units' own command line (render/ceph.py's container argv), --version for the
    # daemon's arguments; the ceph CLI is Python, so its interpreter and modules are proven.
    daemons = ("ceph", "ceph-mon", "ceph-mgr", "ceph-osd", "ceph-mds")
    runs = "\n".join(shlex.join([*ceph_argv(program), "--version"]) for program in daemons)
    try:
        done = in_node(
            d,
            f"""
            mount -t tmpfs tmpfs /run
            # Flatcar's /usr/bin/docker, as a node's boot mounts it.
            mount -t overlay overlay -o "lowerdir={d / "podman" / "bin"}:/usr/bin" /usr/bin
            podman images --format '{{{{.Repository}}}}:{{{{.Tag}}}}'
            {runs}
            """,
        )
    finally:
        engine.release_cgroups(d, Path("/sys/fs/cgroup"))
        shutil.rmtree(d / "podman" / "storage", ignore_errors=True)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == CEPH_IMAGE
    versions = [line for line in lines if line.startswith("ceph version 16.2.15 ")]
    assert len(versions) == 5, done.stdout  # ceph and the four daemons


def ceph_argv(program: str) -> list[str]:
    """The container argv the ceph layer renders for ``program`` on a Flatcar node."""
    inventory = require_inventory(REFERENCE)
    return render_ceph.tool(inventory, render_ceph.mons(inventory)[0], program, "container")
