"""A container engine on every simulated node, so etcd runs as the container a real lab runs.

A real lab's default is ``cluster.etcd.runtime: container``: the member's unit runs
``/usr/bin/docker run ... quay.io/coreos/etcd:v3.4.23`` on Flatcar (``/usr/bin/podman``
on Fedora CoreOS). The simulated nodes get the real engine for it: Debian's podman
(daemonless, so each node's unit runs it inside the node's own namespaces), with the
node's storage in the node's state directory (``NODE/podman``, removed with the lab)
and its run state on the node's own ``/run``. Flatcar's ``/usr/bin/docker`` is podman's
CLI in the node's mount namespace, the shape of Debian's podman-docker package.

No registry is reached: the image the inventory names is made here from Debian's own
binaries (etcd-server's ``/usr/bin/etcd``, etcd-client's ``/usr/bin/etcdctl`` at
``/usr/local/bin`` as upstream's image has them, and the C library they load), written
as an OCI archive by ``labctl/sim/images.py``'s writer, cached under the build cache in
a folder named by the hash of its inputs (a second lab builds nothing), and loaded into
each node's storage at boot with ``podman load``, as an air-gapped lab loads a mirror's
archive. So only the version those binaries are can be made: an image whose tag names
another version is refused before the lab is made, naming what can be had
(``etcd_refusal``), rather than run as what its tag says it is not. What differs from
a real node, and why, is one line of the simulated platform's ``differences()`` and a
row of docs/sim.md: the cgroup manager is cgroupfs (the nodes have no systemd) and the
OCI runtime is runc (crun 1.8 refuses this host's hybrid cgroup tree).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from labctl.errors import LabctlError
from labctl.etcd import build as etcd_build
from labctl.files import write_atomic
from labctl.kubernetes.binaries import cache_root
from labctl.sim import images as sim_images

PODMAN = "/usr/bin/podman"
ETCD_BINARIES = (
    ("/usr/bin/etcd", "/usr/local/bin/etcd"),
    ("/usr/bin/etcdctl", "/usr/local/bin/etcdctl"),
)
# What Debian's etcd binaries load (ldd: the C library and its loader).
ETCD_LIBRARIES = ("/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2")
# Inside a node: its own state directory (labctl/sim/node.py's NODE_MOUNT) and where
# podman keeps what it needs per boot (the node's /run is a fresh tmpfs every boot).
NODE_FOLDER = "podman"
RUNROOT = "/run/containers/storage"
# Podman-docker's /usr/bin/docker, without its notice on stderr.
DOCKER_SHIM = '#!/bin/sh\nexec /usr/bin/podman "$@"\n'
# cgroupfs: the nodes run no systemd. runc: crun 1.8.1 answers "cgroups in hybrid mode not
# supported, drop all controllers from cgroupv2" on this host's cgroup tree.
# The events log is the node's own, kept across its boots: every container it ever made
# is named there, also those whose record a later `docker rm -f` removed.
CONTAINERS_CONF = """\
[containers]
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{events}"
runtime = "runc"
"""
EVENTS = "events.log"
# With cgroupfs, each container's cgroup is libpod_parent/libpod-ID in the host's tree.
CGROUP_PARENT = "libpod_parent"


_VERSION_TAG = re.compile(r"^v?([0-9]+(\.[0-9]+)+([-+][0-9A-Za-z.-]+)?)$")


def image_tag_version(image: str) -> str | None:
    """The version an image reference's tag claims (``quay.io/coreos/etcd:v3.5.21`` ->
    3.5.21); None for no tag or a tag that is no version (``latest``)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    found = _VERSION_TAG.match(last.rsplit(":", 1)[1])
    return found.group(1) if found else None


def etcd_refusal(image: str, have: str, built: bool, engine: bool) -> str | None:
    """Why the etcd image ``image`` cannot be made here, or None when it can: its tag is
    this machine's etcd ``have`` (or claims no version), or that version is ``built``
    (``labctl etcd build``) and the nodes run images (``engine``: podman). Pure."""
    want = image_tag_version(image)
    if want is None or want == have:
        return None
    if not engine:
        return (
            f"the simulated nodes run this machine's etcd {have} as a unit (no podman "
            f"here, or cluster.etcd.runtime host), not {want}: set cluster.etcd.version to "
            f"{have}, or run etcd in a container (podman and runc) after "
            f"`{etcd_build.build_command(want)}`"
        )
    if built:
        return None
    return (
        f"the simulated lab makes the etcd image {image} from this machine's etcd, which is "
        f"{have} (Debian's etcd-server), not {want}, and etcd {want} is not built here: run "
        f"`{etcd_build.build_command(want)}` (or set cluster.etcd.version to {have})"
    )


def host_etcd_version() -> str:
    """What this machine's etcd says it is (``etcd Version: 3.4.23``)."""
    try:
        done = subprocess.run(
            [ETCD_BINARIES[0][0], "--version"], capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise LabctlError(f"{ETCD_BINARIES[0][0]} cannot run ({exc}): install etcd-server") from exc
    for line in done.stdout.splitlines():
        if line.startswith("etcd Version:"):
            return line.split(":", 1)[1].strip()
    raise LabctlError(f"{ETCD_BINARIES[0][0]} --version names no version: {done.stdout!r}")


CEPH = "/usr/bin/ceph"


def ceph_refusal(want: str, have: str) -> str | None:
    """Why a lab at Ceph ``want`` cannot be simulated with this machine's Ceph ``have``
    (the nodes run Debian's daemons; no image is made), or None. Pure."""
    if want == have:
        return None
    return (
        f"the simulated nodes run this machine's Ceph {have} (Debian's ceph packages), not "
        f"cluster.ceph.version {want}: set it to {have}; no other Ceph can be had here "
        "(Ceph is C++ with no module proxy to build from, and no image is pulled)"
    )


def host_ceph_version() -> str | None:
    """What this machine's ceph says it is (``ceph version 16.2.15 (...)``); None without it."""
    try:
        done = subprocess.run([CEPH, "--version"], capture_output=True, text=True, check=False)
    except OSError:
        return None
    words = done.stdout.split()
    return words[2] if len(words) > 2 and words[:2] == ["ceph", "version"] else None


def etcd_source(image: str, in_container: bool = True) -> Path | None:
    """Where the binaries of the etcd image ``image`` come from: None for this machine's
    (Debian's), else the folder of that version's build; a sentence when neither is it.
    ``in_container``: the members run the image (cluster.etcd.runtime container), not
    this machine's etcd as a unit. Called before a lab is made, so a refusal leaves
    nothing behind."""
    have = host_etcd_version()
    want = image_tag_version(image)
    release = None
    if want and etcd_build.is_release(want) and etcd_build.is_built(etcd_build.tag(want)):
        release = etcd_build.tag(want)
    why = etcd_refusal(image, have, release is not None, in_container and available())
    if why:
        raise LabctlError(why)
    if want is None or want == have or release is None:
        return None
    return etcd_build.bin_dir(release)


def available() -> bool:
    """Whether this machine has the engine the nodes run (Debian's podman)."""
    return Path(PODMAN).exists() and shutil.which("runc") is not None


def storage_conf(node_mount: str, stores: tuple[str, ...] = ()) -> str:
    """Podman's storage on a node; ``stores``: read-only image stores its podman also
    reads images from (the Ceph image, loaded once for every node: ceph_image.store)."""
    text = (
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{node_mount}/{NODE_FOLDER}/storage"\n'
        f'runroot = "{RUNROOT}"\n'
    )
    if stores:
        listed = ", ".join(f'"{store}"' for store in stores)
        text += f"\n[storage.options]\nadditionalimagestores = [{listed}]\n"
    return text


def etcd_image(name: str, built: Path | None = None) -> sim_images.Image:
    """``name`` (cluster.etcd.image) as upstream's image is laid out: etcd and etcdctl in
    /usr/local/bin, no entrypoint (the unit names the program). From Debian's binaries
    and the C library they load, or from ``built`` (``labctl etcd build``: static)."""
    if built is not None:
        inside = dict(ETCD_BINARIES)
        sources = [(str(built / Path(host).name), inside[host]) for host, _ in ETCD_BINARIES]
    else:
        sources = list(ETCD_BINARIES)
    (binary, path), *others = sources
    extra = [(inside_path, "file", host) for host, inside_path in others]
    if built is None:
        extra += [
            (p, kind, value) for p, (kind, value) in sim_images.host_closure(ETCD_LIBRARIES).items()
        ]
    extra += [(f"/{link}", "link", target) for link, target in sim_images.MERGED_USR]
    return sim_images.Image(name, Path(binary), path, (), tuple(extra))


@dataclass(frozen=True)
class Archive:
    image: str
    path: Path


def _stamp(image: sim_images.Image) -> str:
    h = hashlib.sha256(Path(sim_images.__file__).read_bytes())
    h.update(Path(__file__).read_bytes())
    h.update(image.name.encode())
    files = [image.binary, *(Path(v) for _, kind, v in image.extra if kind == "file")]
    for path, kind, value in image.extra:
        h.update(f"{path}\0{kind}\0{value}\0".encode())
    # A file by its size and modification time, not its bytes: hashing the etcd binary
    # took 0.17 s of every bootstrap's planning (docs/performance.md, `convgap`), and a
    # build that replaces a binary gives it a new time.
    for file in files:
        stat = file.stat()
        h.update(f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return h.hexdigest()


def image_dir() -> Path:
    """Beside the Kubernetes build cache: /var/cache/labctl/container-images as root."""
    return cache_root().parent / "container-images"


def build(image: sim_images.Image) -> Archive:
    """The archive of ``image`` in the cache, written unless one of the same inputs is there."""
    folder = image_dir() / _stamp(image)[:24]
    path = folder / sim_images.archive_name(image.name)
    if not path.exists():
        write_atomic(path, sim_images.oci_archive(image), 0o644)
    return Archive(image.name, path)


def prepare(
    node_dir: Path, node_mount: str, archives: list[Archive], stores: tuple[str, ...] = ()
) -> None:
    """The node's engine files: podman's settings, the docker shim, the archives to load
    (``node_mount``: where the node sees ``node_dir``), the read-only image stores."""
    d = node_dir / NODE_FOLDER
    (d / "storage").mkdir(parents=True, exist_ok=True)
    (d / "storage.conf").write_text(storage_conf(node_mount, stores))
    (d / "bin").mkdir(parents=True, exist_ok=True)
    shim = d / "bin" / "docker"
    shim.write_text(DOCKER_SHIM)
    shim.chmod(0o755)
    (d / "containers.conf").write_text(
        CONTAINERS_CONF.format(events=f"{node_mount}/{NODE_FOLDER}/{EVENTS}")
    )
    (d / "archives.json").write_text(
        json.dumps([{"image": a.image, "path": str(a.path)} for a in archives])
    )


def add_store(node_dir: Path, node_mount: str, store: str) -> bool:
    """``store`` listed in the node's podman settings beside those it has (a Ceph image
    made under another name on a lab that is up); False when it was listed already.
    The node copies the file at boot; a running node is given it by the caller."""
    path = node_dir / NODE_FOLDER / "storage.conf"
    text = path.read_text()
    listed = re.search(r"additionalimagestores = \[(.*)\]", text)
    stores = tuple(re.findall(r'"([^"]*)"', listed.group(1))) if listed else ()
    if store in stores:
        return False
    path.write_text(storage_conf(node_mount, (*stores, store)))
    return True


def boot_folder(node_dir: Path, node_mount: str) -> str | None:
    """Where the node sees its podman's files, for its boot (labctl/sim/node-boot.sh:
    the cgroup hierarchies, podman's settings in /etc/containers, docker in /usr/bin);
    None when the lab has no container engine."""
    if not (node_dir / NODE_FOLDER / "archives.json").exists():
        return None
    return f"{node_mount}/{NODE_FOLDER}"


def boot_images(node_dir: Path) -> str:
    """``IMAGE ARCHIVE`` per image the node's boot loads unless its storage has it."""
    path = node_dir / NODE_FOLDER / "archives.json"
    if not path.exists():
        return ""
    return "".join(f"{item['image']} {item['path']}\n" for item in json.loads(path.read_text()))


def container_ids(node_dir: Path) -> set[str]:
    """Every container the node's podman made (their cgroups are named after them): the
    ones its storage holds and the ones its events log names."""
    d = node_dir / NODE_FOLDER
    found: set[str] = set()
    with contextlib.suppress(OSError, ValueError):
        records = json.loads((d / "storage" / "overlay-containers" / "containers.json").read_text())
        found |= {str(c["id"]) for c in records}
    with contextlib.suppress(OSError):
        for line in (d / EVENTS).read_text().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and event.get("Type") == "container" and event.get("ID"):
                    found.add(str(event["ID"]))
    return found


def release_cgroups(node_dir: Path, root: Path) -> list[Path]:
    """Remove the cgroups of the node's containers (power-off kills their processes but
    leaves the directories in the host's tree); the ones removed."""
    paths = [
        path
        for container in sorted(container_ids(node_dir))
        for path in root.glob(f"*/{CGROUP_PARENT}/*{container}*")
    ]
    return [path for path in paths if remove_cgroup(path)]


def remove_cgroup(path: Path) -> bool:
    """Remove one empty cgroup directory; whether it was there to remove. The kernel lets
    go of a cgroup a moment after its last task died, so a busy one is tried again."""
    for _ in range(20):
        try:
            path.rmdir()
        except FileNotFoundError:
            return False
        except OSError:
            time.sleep(0.05)
            continue
        return True
    return False
