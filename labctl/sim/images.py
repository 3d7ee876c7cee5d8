"""Container images of the control plane, made on this machine from the binaries it built.

No registry this project reaches serves registry.k8s.io, so the simulated lab's kubelets
cannot pull ``registry.k8s.io/kube-apiserver:v1.36.3``. The same static pod manifests
as a real lab's still run there: each image is written here as an OCI image archive
(one uncompressed layer holding the static binary, an image config with its
entrypoint, a manifest, ``index.json`` naming it ``registry.k8s.io/NAME:TAG``) and the
layer imports it into each node's containerd (``ctr -n k8s.io images import``). The
sandbox image (``pause``) is built from ``build/pause/linux/pause.c`` of the
``k8s.io/kubernetes`` module source with ``gcc -static``. kube-proxy's image also
carries the host's iptables (the nft backend, ``xtables-nft-multi``, its extensions and
the shared libraries they load), copied at the same paths, because kube-proxy execs
``iptables-restore`` and friends to write its rules. CoreDNS, which is not part of
Kubernetes, is built here too, from its own Go module at the version its image tag
names (``go install github.com/coredns/coredns@VERSION``: its own go.mod and go.sum,
checked against the Go checksum database), static, once per version.

Archives land beside the binaries in the version's cache folder (``.../v1.36.3/images``)
with a stamp of their inputs' hashes, so a second run builds nothing. Writing an
archive is pure apart from the file it writes: no Docker, no registry. Only the
simulated lab runs from these images (its platform's ``pods`` runtime; a real lab
pulls upstream's), so this module lives with the simulation.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from labctl.files import write_atomic
from labctl.kubernetes.binaries import bin_dir, cache_root
from labctl.kubernetes.build import build_command
from labctl.render.kubernetes.addons import COREDNS_IMAGE

REGISTRY = "registry.k8s.io"
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
PROXY = "kube-proxy"
# iptables as kube-proxy's iptables mode runs it: the nft backend (the kernel's nf_tables;
# Debian 12's default), every name it is called by, and the extensions it dlopens
# (-m comment, -m statistic, -j DNAT, ...), which ldd of the binary does not show.
XTABLES = "/usr/sbin/xtables-nft-multi"
XTABLES_EXTENSIONS = "/usr/lib/x86_64-linux-gnu/xtables"
XTABLES_NAMES = tuple(
    f"{family}{suffix}"
    for family in ("iptables", "ip6tables")
    for suffix in ("", "-save", "-restore", "-nft", "-nft-save", "-nft-restore")
)
# Debian 12 merges /usr: the loader and libraries ldd names under /lib are in /usr/lib.
MERGED_USR = (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"))
# The sandbox image Kubernetes v1.36's build/pause/Makefile tags; containerd's CRI is
# told to use it (sandbox_image), so it never tries to pull another.
PAUSE_TAG = "3.10.2"
PAUSE_IMAGE = f"{REGISTRY}/pause:{PAUSE_TAG}"
COREDNS_MODULE = "github.com/coredns/coredns"
COREDNS_VERSION = COREDNS_IMAGE.rsplit(":", 1)[1]
# Fixed so the same binary gives the same archive (and the same image id) every time.
EPOCH = 0


@dataclass(frozen=True)
class Image:
    """One image: its full name, the file its layer holds, and how it is started;
    ``extra`` adds (path in image, "file" host path | "link" target) entries."""

    name: str
    binary: Path
    path_in_image: str
    entrypoint: tuple[str, ...]
    extra: tuple[tuple[str, str, str], ...] = ()


def image_dir(version: str) -> Path:
    return cache_root() / version / "images"


def archive_name(image: str) -> str:
    """registry.k8s.io/kube-apiserver:v1.36.3 -> kube-apiserver.tar."""
    return image.rsplit("/", 1)[-1].split(":", 1)[0] + ".tar"


def _entries(image: Image) -> dict[str, tuple[str, str]]:
    """Every path of the layer (no leading slash): ("dir", ""), ("file", host path) or
    ("link", target), with the folders each path needs."""
    found: dict[str, tuple[str, str]] = {"tmp": ("dir", "")}
    found[image.path_in_image.strip("/")] = ("file", str(image.binary))
    for path, kind, value in image.extra:
        found[path.strip("/")] = (kind, value)
    for path in list(found):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            found.setdefault("/".join(parts[:depth]), ("dir", ""))
    return found


def _layer(image: Image) -> bytes:
    """An uncompressed layer tar: the binary, what ``extra`` adds, and the folders they
    expect (/tmp), in name order with fixed times and owners so it is the same each time."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, (kind, value) in sorted(_entries(image).items()):
            entry = tarfile.TarInfo(name)
            entry.mtime = EPOCH
            if kind == "dir":
                entry.type, entry.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
                tar.addfile(entry)
            elif kind == "link":
                entry.type, entry.mode, entry.linkname = tarfile.SYMTYPE, 0o777, value
                tar.addfile(entry)
            else:
                data = Path(value).read_bytes()
                entry.size, entry.mode = len(data), 0o755
                tar.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


def host_closure(paths: Iterable[str], root: str = "") -> dict[str, tuple[str, str]]:
    """``paths`` as they are on this machine, or in the folder ``root`` (another
    system's root, its paths read under it): each symbolic link met on the way (in the
    path or at its end) as ("link", target), followed in the same root, each file as
    ("file", where this machine reads it). In a ``root``, a dangling link is kept as the
    link alone (trixie's /etc/modules-load.d/modules.conf points at an /etc/modules no
    package holds)."""
    found: dict[str, tuple[str, str]] = {}
    todo = [posixpath.normpath(p) for p in paths]
    seen: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        parts = path.strip("/").split("/")
        at = ""
        for i, part in enumerate(parts):
            at = f"{at}/{part}"
            if os.path.islink(root + at):
                target = os.readlink(root + at)
                found[at] = ("link", target)
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(at), target))
                todo.append(posixpath.join(resolved, *parts[i + 1 :]))
                break
        else:
            if not root or os.path.lexists(root + at):
                found[at] = ("file", root + at)
    return found


def shared_libraries(binaries: Iterable[str], root: str = "") -> set[str]:
    """The libraries (and the loader) ldd says ``binaries`` load; in the folder
    ``root`` (another system's root), that root's ldd run in it (its own loader and
    library paths), not this machine's."""
    chroot = ["chroot", root] if root else []
    found: set[str] = set()
    for binary in binaries:
        said = subprocess.run([*chroot, "ldd", binary], check=True, capture_output=True, text=True)
        for line in said.stdout.splitlines():
            words = line.split()
            if "=>" in words and len(words) > words.index("=>") + 1:
                found.add(words[words.index("=>") + 1])
            elif words and words[0].startswith("/"):
                found.add(words[0])
    return {f for f in found if f.startswith("/")}


def iptables_files() -> tuple[tuple[str, str, str], ...]:
    """This machine's nft-backed iptables, as kube-proxy's image holds it: the binary,
    its names, its extensions and every library those load, at the paths they have here."""
    extensions = sorted(str(p) for p in Path(XTABLES_EXTENSIONS).glob("*.so"))
    wanted = [XTABLES, *extensions]
    found = host_closure([*wanted, *shared_libraries(wanted)])
    # The image's own /usr merge stands in for the host's links at the top.
    entries = [(path, *found[path]) for path in sorted(found) if path.count("/") > 1]
    entries += [(f"/{name}", "link", target) for name, target in MERGED_USR]
    directory = posixpath.dirname(XTABLES)
    entries += [
        (f"{directory}/{name}", "link", posixpath.basename(XTABLES)) for name in XTABLES_NAMES
    ]
    return tuple(sorted(set(entries)))


def _blob(blobs: dict[str, bytes], data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return digest


def oci_archive(image: Image, architecture: str = "amd64") -> bytes:
    """The OCI image layout of ``image`` as a tar, as `ctr images import` reads it."""
    blobs: dict[str, bytes] = {}
    layer = _layer(image)
    layer_digest = _blob(blobs, layer)
    config = {
        "architecture": architecture,
        "os": "linux",
        "config": {
            "Entrypoint": list(image.entrypoint),
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "labctl.sim.images (from the binary built here)"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _blob(blobs, config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": len(layer),
            }
        ],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": _blob(blobs, manifest_bytes),
                "size": len(manifest_bytes),
                "platform": {"architecture": architecture, "os": "linux"},
                "annotations": {
                    # containerd names the image after this one on import.
                    "io.containerd.image.name": image.name,
                    "org.opencontainers.image.ref.name": image.name.rsplit(":", 1)[1],
                },
            }
        ],
    }
    files = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index, sort_keys=True).encode(),
        **{f"blobs/sha256/{d.split(':', 1)[1]}": data for d, data in sorted(blobs.items())},
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for folder in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, EPOCH
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def pause_source(modcache: Path, version: str) -> Path:
    return modcache / f"k8s.io/kubernetes@{version}" / "build/pause/linux/pause.c"


def build_pause(source: Path, out: Path) -> None:
    """The sandbox process, as build/pause/Makefile compiles it (static, so no libc needed)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{PAUSE_TAG}-labctl",
         "-o", str(out), str(source)],
        check=True,
    )  # fmt: skip


def coredns_binary(version: str = COREDNS_VERSION) -> Path:
    return cache_root() / "coredns" / version / "coredns"


def build_coredns(out: Path, version: str = COREDNS_VERSION) -> None:
    """CoreDNS ``version`` at ``out``, built with this machine's Go unless it is there."""
    if out.exists():
        return
    work = out.parent / f".build.{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            ["go", "install", "-trimpath", "-ldflags", "-s -w", f"{COREDNS_MODULE}@{version}"],
            env={**os.environ, "GOBIN": str(work), "CGO_ENABLED": "0"},
            check=True,
        )
        os.replace(work / "coredns", out)  # whole or not at all
    finally:
        shutil.rmtree(work, ignore_errors=True)


def images(version: str, pause_binary: Path, with_iptables: bool = True) -> list[Image]:
    """Every image the pods run: ``version``'s, the sandbox's and CoreDNS's.

    ``with_iptables=False`` leaves kube-proxy's iptables out (it reads this machine's
    files, which a test that only checks names need not)."""
    binaries = bin_dir(version)
    found = [
        Image(
            f"{REGISTRY}/{name}:{version}",
            binaries / name,
            f"/usr/local/bin/{name}",
            (f"/usr/local/bin/{name}",),
        )
        for name in CONTROL_PLANE
    ]
    found.append(
        Image(
            f"{REGISTRY}/{PROXY}:{version}",
            binaries / PROXY,
            f"/usr/local/bin/{PROXY}",
            (f"/usr/local/bin/{PROXY}",),
            iptables_files() if with_iptables else (),
        )
    )
    found.append(Image(PAUSE_IMAGE, pause_binary, "/pause", ("/pause",)))
    found.append(Image(f"{REGISTRY}/{COREDNS_IMAGE}", coredns_binary(), "/coredns", ("/coredns",)))
    return found


def _stamp(items: list[Image]) -> str:
    h = hashlib.sha256(Path(__file__).read_bytes())
    for item in items:
        h.update(item.name.encode())
        files = [item.binary, *(Path(v) for _, kind, v in item.extra if kind == "file")]
        for path, kind, value in item.extra:
            h.update(f"{path}\0{kind}\0{value}\0".encode())
        for file in files:
            with file.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def build(version: str, modcache: Path) -> Path:
    """Write every archive of ``version`` into its cache folder (or find them there)."""
    dest = image_dir(version)
    source = pause_source(modcache, version)
    if not source.exists():
        raise SystemExit(f"{source} is missing: `{build_command(version)}` downloads the module")
    pause = dest / "pause" / "pause"
    build_pause(source, pause)
    build_coredns(coredns_binary())
    items = images(version, pause)
    missing = [i.binary for i in items if not i.binary.exists()]
    if missing:
        raise SystemExit(
            f"not built yet: {', '.join(map(str, missing))}; run `{build_command(version)}`"
        )
    want = _stamp(items)
    stamp = dest / ".stamp"
    built = all((dest / archive_name(i.name)).exists() for i in items)
    if built and stamp.exists() and stamp.read_text().strip() == want:
        return dest
    for item in items:
        write_atomic(dest / archive_name(item.name), oci_archive(item), 0o644)
    write_atomic(stamp, (want + "\n").encode(), 0o644)
    return dest


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m labctl.sim.images VERSION  (e.g. v1.36.3)", file=sys.stderr)
        return 2
    print(build(argv[0], modcache()))
    return 0


def modcache() -> Path:
    """Where go keeps downloaded modules (the pause source is read from there)."""
    return Path(
        os.environ.get("GOMODCACHE")
        or subprocess.run(
            ["go", "env", "GOMODCACHE"], check=True, capture_output=True, text=True
        ).stdout.strip()
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
