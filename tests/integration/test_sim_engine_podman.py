"""The etcd image made here, under the real podman with the settings a simulated node gets.

No lab is brought up: podman runs in a mount and PID namespace of the test's own
(``unshare``), with the node's own ``storage.conf`` and ``containers.conf`` as
``labctl/sim/engine.py`` writes them and its storage in the test's folder. The archive
is loaded as a node's boot loads it, and the container runs the image's etcd and
etcdctl under the inventory's image name, through the docker shim Flatcar's units call.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.sim import engine

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
