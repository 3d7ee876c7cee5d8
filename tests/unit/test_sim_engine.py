"""The simulated nodes' container engine: the etcd image made here, the node's podman
files, the boot's load, and power-off's release of the containers' cgroups.

The image is read back from the archive the layer would load (its layer's files and its
config), not from the function's inputs; ``tests/integration/test_sim_engine_podman.py``
runs it under the real podman.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from labctl.sim import engine

IMAGE = "quay.io/coreos/etcd:v3.4.23"


def archive_parts(data: bytes) -> tuple[dict[str, object], dict[str, object], set[str]]:
    """index.json, the image config and the layer's paths of an OCI archive."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:

        def blob(digest: str) -> bytes:
            found = tar.extractfile(f"blobs/sha256/{digest.split(':', 1)[1]}")
            assert found is not None
            return found.read()

        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        layer = blob(manifest["layers"][0]["digest"])
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        paths = {m.name for m in tar.getmembers()}
    return index, config, paths


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LABCTL_KUBE_CACHE", str(tmp_path / "cache" / "kubernetes"))
    return tmp_path / "cache"


def test_the_etcd_image_is_upstreams_layout_under_the_inventorys_name(cache: Path) -> None:
    archive = engine.build(engine.etcd_image(IMAGE))
    assert archive.image == IMAGE
    assert archive.path.parent.parent == cache / "container-images"
    index, config, paths = archive_parts(archive.path.read_bytes())
    annotations = index["manifests"][0]["annotations"]  # type: ignore[index]
    assert annotations["io.containerd.image.name"] == IMAGE
    assert annotations["org.opencontainers.image.ref.name"] == "v3.4.23"
    # No entrypoint: the unit names the program (`... IMAGE /usr/local/bin/etcd`).
    assert config["config"]["Entrypoint"] == []  # type: ignore[index]
    assert {"usr/local/bin/etcd", "usr/local/bin/etcdctl"} <= paths
    assert "usr/lib/x86_64-linux-gnu/libc.so.6" in paths


def test_the_archive_is_built_once_per_inputs(cache: Path) -> None:
    first = engine.build(engine.etcd_image(IMAGE))
    written = first.path.stat().st_mtime_ns
    again = engine.build(engine.etcd_image(IMAGE))
    assert again.path == first.path and again.path.stat().st_mtime_ns == written
    other = engine.build(engine.etcd_image("mirror.example/etcd:v3.4.23"))
    assert other.path.parent != first.path.parent


def test_a_node_gets_podman_files_in_its_own_folder_and_loads_at_boot(tmp_path: Path) -> None:
    node = tmp_path / "nodes" / "fohn"
    archive = engine.Archive(IMAGE, Path("/var/cache/labctl/container-images/x/etcd.tar"))
    engine.prepare(node, "/mnt", [archive])
    storage = (node / "podman" / "storage.conf").read_text()
    assert 'graphroot = "/mnt/podman/storage"' in storage  # the node's state, gone at sim down
    assert 'runroot = "/run/containers/storage"' in storage  # the node's /run, new each boot
    conf = (node / "podman" / "containers.conf").read_text()
    assert 'cgroup_manager = "cgroupfs"' in conf and 'runtime = "runc"' in conf
    assert 'events_logfile_path = "/mnt/podman/events.log"' in conf  # kept across boots
    assert (node / "podman" / "bin" / "docker").read_text() == engine.DOCKER_SHIM
    assert engine.boot_folder(node, "/mnt") == "/mnt/podman"  # the boot's settings and bin
    assert engine.boot_images(node) == f"{IMAGE} {archive.path}\n"  # loaded at boot


def test_a_node_of_a_lab_without_podman_boots_as_before(tmp_path: Path) -> None:
    assert engine.boot_folder(tmp_path / "nodes" / "fohn", "/mnt") is None
    assert engine.boot_images(tmp_path / "nodes" / "fohn") == ""


def test_power_off_releases_only_this_nodes_podman_cgroups(tmp_path: Path) -> None:
    node = tmp_path / "nodes" / "fohn"
    containers = node / "podman" / "storage" / "overlay-containers"
    containers.mkdir(parents=True)
    (containers / "containers.json").write_text(json.dumps([{"id": "aaa1"}]))
    # ccc3 was removed from storage (`docker rm -f` at the next boot); its events remain.
    events = [
        {"ID": "ccc3", "Status": "create", "Type": "container"},
        {"Name": "quay.io/coreos/etcd:v3.4.23", "Status": "pull", "Type": "image"},
    ]
    (node / "podman" / "events.log").write_text(
        "\n".join(json.dumps(e) for e in events) + "\n{torn"
    )
    root = tmp_path / "cgroup"
    for hierarchy in ("memory", "pids"):
        for name in ("libpod-aaa1", "libpod-bbb2", "libpod-ccc3", "conmon"):
            (root / hierarchy / engine.CGROUP_PARENT / name).mkdir(parents=True)
    removed = engine.release_cgroups(node, root)
    assert sorted(str(p.relative_to(root)) for p in removed) == [
        "memory/libpod_parent/libpod-aaa1",
        "memory/libpod_parent/libpod-ccc3",
        "pids/libpod_parent/libpod-aaa1",
        "pids/libpod_parent/libpod-ccc3",
    ]
    assert sorted(p.name for p in (root / "memory" / engine.CGROUP_PARENT).iterdir()) == [
        "conmon",
        "libpod-bbb2",
    ]


def test_a_node_boots_the_shipped_script_with_its_values_as_arguments(tmp_path: Path) -> None:
    """The boot is labctl/sim/node-boot.sh (shellcheck reads it), never a script built in
    Python: the node's values are its arguments, its disks and images tables beside it."""
    from labctl.sim import node as sim_node

    state = tmp_path / "state"
    d = sim_node.node_dir(state, "fohn")
    d.mkdir(parents=True)
    (d / "node.json").write_text('{"netns": "x", "login_user": "core"}')
    argv = sim_node.boot_argv(state, "fohn")
    assert argv[:2] == ["sh", str(sim_node.BOOT_SCRIPT)] and sim_node.BOOT_SCRIPT.is_file()
    assert argv[2:8] == ["fohn", str(d), "/mnt", str(state / "bmcs/fohn/bootdev"), "core", "-"]
    assert argv[8:] == list(sim_node.WRITABLE)
    sim_node.write_boot_tables(d)
    tables = {p.name for p in (d / "boot").iterdir()}
    assert tables == {"disks", "links", "images", "mount-cgroups.sh"}


def test_the_etcd_image_tag_is_honest() -> None:
    """The image is made from this machine's etcd or from a build of the version its tag
    names; a tag naming a version that is neither is refused with what can be had."""
    assert engine.image_tag_version("quay.io/coreos/etcd:v3.5.21") == "3.5.21"
    assert engine.image_tag_version("registry:5000/etcd:3.4.23@sha256:" + "a" * 64) == "3.4.23"
    assert engine.image_tag_version("registry:5000/etcd") is None
    assert engine.image_tag_version("quay.io/coreos/etcd:latest") is None
    assert engine.etcd_refusal(IMAGE, "3.4.23", built=False, engine=True) is None
    other = "quay.io/coreos/etcd:v3.5.21"
    assert engine.etcd_refusal(other, "3.4.23", built=True, engine=True) is None
    said = engine.etcd_refusal(other, "3.4.23", built=False, engine=True)
    assert said == (
        "the simulated lab makes the etcd image quay.io/coreos/etcd:v3.5.21 from this "
        "machine's etcd, which is 3.4.23 (Debian's etcd-server), not 3.5.21, and etcd "
        "3.5.21 is not built here: run `labctl etcd build --version 3.5.21` (or set "
        "cluster.etcd.version to 3.4.23)"
    )
    # Members that run this machine's etcd as a unit cannot run a build at all.
    said = engine.etcd_refusal(other, "3.4.23", built=True, engine=False)
    assert said is not None
    assert said.startswith("the simulated nodes run this machine's etcd 3.4.23 as a unit")


def test_an_image_of_a_built_version_carries_that_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With etcd 3.5.21 in the etcd build cache, the image of quay.io/coreos/etcd:v3.5.21
    holds those two files (static: no C library beside them)."""
    monkeypatch.setenv("LABCTL_ETCD_CACHE", str(tmp_path / "etcd"))
    monkeypatch.setenv("LABCTL_KUBE_CACHE", str(tmp_path / "kubernetes"))
    built = tmp_path / "etcd" / "v3.5.21" / "bin"
    built.mkdir(parents=True)
    (built / "etcd").write_bytes(b"etcd 3.5.21 build")
    (built / "etcdctl").write_bytes(b"etcdctl 3.5.21 build")
    image = "quay.io/coreos/etcd:v3.5.21"
    assert engine.etcd_source(image) == built
    assert engine.etcd_source(IMAGE) is None  # this machine's own version
    archive = engine.build(engine.etcd_image(image, built))
    _, _, paths = archive_parts(archive.path.read_bytes())
    assert {"usr/local/bin/etcd", "usr/local/bin/etcdctl"} <= paths
    assert not any("libc.so" in p for p in paths)
    with tarfile.open(archive.path) as outer:
        assert b"etcd 3.5.21 build" in b"".join(
            outer.extractfile(m).read()  # type: ignore[union-attr]
            for m in outer.getmembers()
            if m.isfile()
        )


def test_a_lab_with_another_etcd_version_is_refused_before_anything_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`labctl sim up` at etcd 3.5.21 stops before its state folder exists. A tripwire
    on the next step (looking for a lab already up) makes sure no lab is ever brought
    up here, also by a labctl that lacks the check."""
    from labctl.errors import LabctlError
    from labctl.inventory import require_inventory
    from labctl.sim import lab
    from tests.conftest import REFERENCE

    text = REFERENCE.read_text()
    assert "  etcd:\n    version: 3.4.23" in text
    path = tmp_path / "inventory.yaml"
    path.write_text(text.replace("  etcd:\n    version: 3.4.23", "  etcd:\n    version: 3.5.21"))
    state = tmp_path / "state"
    monkeypatch.setenv("LABCTL_ETCD_CACHE", str(tmp_path / "no-etcd-build"))

    def tripwire(*_: object) -> None:
        raise AssertionError("sim up went past the etcd image check")

    monkeypatch.setattr(lab, "_refuse_if_taken", tripwire)
    with pytest.raises(
        LabctlError,
        match=r"which is 3\.4\.23 \(Debian's etcd-server\), not 3\.5\.21, and etcd 3\.5\.21 is "
        r"not built here: run `labctl etcd build --version 3\.5\.21`",
    ):
        lab.up(require_inventory(path), path, state)
    assert not state.exists()


def test_a_lab_with_another_ceph_version_is_refused_before_anything_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nodes run the Ceph image made from Debian's packages: a lab at a Ceph version
    no Debian suite known here ships is refused by `sim up` with the ones that can be
    had (the same tripwire as etcd's test)."""
    from labctl.errors import LabctlError
    from labctl.inventory import require_inventory
    from labctl.sim import lab
    from tests.conftest import REFERENCE

    have = engine.host_ceph_version()
    assert have == "16.2.15", "Debian 12's ceph packages are part of the set-up"
    assert engine.ceph_refusal("16.2.15", have) is None
    text = REFERENCE.read_text()
    line = "    version: 16.2.15                 # invented: Pacific, what Debian 12 packages\n"
    assert line in text
    path = tmp_path / "inventory.yaml"
    path.write_text(text.replace(line, "    version: 17.2.7\n"))
    state = tmp_path / "state"

    def tripwire(*_: object) -> None:
        raise AssertionError("sim up went past the Ceph version check")

    monkeypatch.setattr(lab, "_refuse_if_taken", tripwire)
    with pytest.raises(
        LabctlError,
        match=r"no Debian suite it knows ships Ceph 17\.2\.7: this machine can make 16\.2\.15 "
        r"\(this machine's, Debian bookworm\) or 18\.2\.7 \(Debian trixie\)",
    ):
        lab.up(require_inventory(path), path, state)
    assert not state.exists()


def test_a_ceph_image_store_made_later_is_added_beside_the_nodes_stores(tmp_path: Path) -> None:
    """`sim up` on a running lab whose cluster.ceph.image changed (a mirror's name) adds
    the new image's store to the node's podman settings, once, keeping the first."""
    node = tmp_path / "node"
    engine.prepare(node, "/mnt", [], ("/cache/a/store",))
    assert engine.add_store(node, "/mnt", "/cache/b/store")
    assert not engine.add_store(node, "/mnt", "/cache/b/store")
    text = (node / engine.NODE_FOLDER / "storage.conf").read_text()
    assert 'additionalimagestores = ["/cache/a/store", "/cache/b/store"]' in text
    assert text == engine.storage_conf("/mnt", ("/cache/a/store", "/cache/b/store"))
