"""The OCI image archives labctl writes from the binaries it built: a layout
`ctr images import` takes (tested against containerd in the e2e test), checked
here for what it must hold: digests that match, the upstream name, the entrypoint."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from labctl.inventory import require_inventory
from labctl.render.kubernetes.addons import coredns_image
from labctl.sim import images
from labctl.sim.render import kubernetes as host
from tests.conftest import REFERENCE


def _files(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_an_archive_is_an_oci_layout_under_the_upstream_name(tmp_path: Path) -> None:
    binary = tmp_path / "kube-apiserver"
    binary.write_bytes(b"\x7fELF not really")
    image = images.Image(
        "registry.k8s.io/kube-apiserver:v1.36.3",
        binary,
        "/usr/local/bin/kube-apiserver",
        ("/usr/local/bin/kube-apiserver",),
    )
    archive = images.oci_archive(image)
    files = _files(archive)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    (entry,) = json.loads(files["index.json"])["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == image.name
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "v1.36.3"
    manifest = json.loads(files[f"blobs/sha256/{entry['digest'].split(':')[1]}"])
    config = json.loads(files[f"blobs/sha256/{manifest['config']['digest'].split(':')[1]}"])
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/kube-apiserver"]
    assert "/usr/local/bin" in config["config"]["Env"][0]  # the manifests' bare command
    (layer,) = manifest["layers"]
    assert config["rootfs"]["diff_ids"] == [layer["digest"]]  # uncompressed: one digest
    with tarfile.open(fileobj=io.BytesIO(files[f"blobs/sha256/{layer['digest'][7:]}"])) as tar:
        member = tar.getmember("usr/local/bin/kube-apiserver")
        assert member.mode == 0o755
        assert tar.extractfile(member).read() == binary.read_bytes()  # type: ignore[union-attr]
        assert tar.getmember("tmp").mode == 0o1777
    # The same binary makes the same archive: the same image id on every machine.
    assert images.oci_archive(image) == archive


def test_the_images_are_named_as_the_manifests_and_containerd_want() -> None:
    found = {i.name for i in images.images("v1.36.3", Path("/pause"), with_iptables=False)}
    assert found == {
        "registry.k8s.io/kube-apiserver:v1.36.3",
        "registry.k8s.io/kube-controller-manager:v1.36.3",
        "registry.k8s.io/kube-scheduler:v1.36.3",
        "registry.k8s.io/kube-proxy:v1.36.3",
        host.SANDBOX_IMAGE,
        coredns_image(require_inventory(REFERENCE)),  # CoreDNS's own version, not Kubernetes'
    }
    assert images.archive_name(host.SANDBOX_IMAGE) == "pause.tar"
    assert images.archive_name(coredns_image(require_inventory(REFERENCE))) == "coredns.tar"


def _layer_members(archive: bytes) -> dict[str, tarfile.TarInfo]:
    files = _files(archive)
    (entry,) = json.loads(files["index.json"])["manifests"]
    manifest = json.loads(files[f"blobs/sha256/{entry['digest'].split(':')[1]}"])
    (layer,) = manifest["layers"]
    with tarfile.open(fileobj=io.BytesIO(files[f"blobs/sha256/{layer['digest'][7:]}"])) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_kube_proxys_image_holds_this_machines_iptables(tmp_path: Path) -> None:
    """kube-proxy execs iptables-restore & co: the nft backend, its dlopened extensions,
    every library ldd names and the loader are in the layer, links resolving inside it."""
    binary = tmp_path / "kube-proxy"
    binary.write_bytes(b"\x7fELF not really")
    extra = images.iptables_files()
    image = images.Image(
        "registry.k8s.io/kube-proxy:v1.36.3",
        binary,
        "/usr/local/bin/kube-proxy",
        ("/usr/local/bin/kube-proxy",),
        extra,
    )
    archive = images.oci_archive(image)
    members = _layer_members(archive)
    assert members["usr/sbin/xtables-nft-multi"].isfile()
    for name in ("iptables", "iptables-save", "iptables-restore", "ip6tables",
                 "ip6tables-save", "ip6tables-restore"):  # fmt: skip
        link = members[f"usr/sbin/{name}"]
        assert link.issym() and link.linkname == "xtables-nft-multi", name
    for extension in ("libxt_comment.so", "libxt_statistic.so", "libxt_mark.so",
                      "libxt_conntrack.so", "libxt_DNAT.so", "libxt_MASQUERADE.so"):  # fmt: skip
        found = f"usr/lib/x86_64-linux-gnu/xtables/{extension}"
        assert found in members, extension
    needed = images.shared_libraries([images.XTABLES])
    assert any("libxtables" in n for n in needed) and any("ld-linux" in n for n in needed)

    def resolves(path: str) -> bool:
        """``path`` leads to a file in the layer, following its links there."""
        for _ in range(20):
            parts = path.strip("/").split("/")
            for i in range(1, len(parts) + 1):
                at = "/".join(parts[:i])
                member = members.get(at)
                if member is None:
                    return False
                if member.issym():
                    base = "" if member.linkname.startswith("/") else "/".join(parts[: i - 1])
                    path = "/".join(p for p in (base, member.linkname, *parts[i:]) if p)
                    break
            else:
                return members[path.strip("/")].isfile()
        return False

    for library in needed:
        assert resolves(library), library
    assert resolves("/usr/sbin/iptables-restore")
    # Nothing of it changes between builds: the same bytes, so the same image id.
    assert images.oci_archive(image) == archive
    files = _files(archive)
    (entry,) = json.loads(files["index.json"])["manifests"]
    manifest = json.loads(files[f"blobs/sha256/{entry['digest'][7:]}"])
    config = json.loads(files[f"blobs/sha256/{manifest['config']['digest'][7:]}"])
    assert "/usr/sbin" in config["config"]["Env"][0]  # kube-proxy finds iptables on its PATH
