"""The Ceph image the inventory names, made on this machine from Debian's Ceph packages.

A real lab's default is ``cluster.ceph.runtime: container``: every Ceph daemon and tool
runs as ``docker run ... --entrypoint /usr/bin/ceph-mon quay.io/ceph/ceph:v16.2.15``
(podman on Fedora CoreOS). No registry is reached from here, so the simulated lab makes
that image from the Ceph this machine has installed (Debian 12's 16.2.15), as
``labctl/sim/engine.py`` makes etcd's: the files of the packages that hold the daemons
and tools the units start (ceph-mon, ceph-mgr, ceph-osd, ceph-mds, the ``ceph`` CLI,
monmaptool, ceph-bluestore-tool) and of every package those depend on (Depends and
Pre-Depends, read from dpkg's own records; ``dpkg -L`` says which files), less their
documentation, manual pages and translations. Debian's dependencies are what make the
daemons' shared libraries, Ceph's dlopened plugins, Python and the modules the CLI and
ceph-mgr import be there; ``ldd`` of the programs is checked against the list
(``missing_libraries``), so a library the packages' records miss fails the build.

The archive is written streaming (the layer is a few hundred MiB) to the cache folder
named by the hash of its inputs (this file, the writer, and the name and version of
every package it holds), so a second lab builds nothing, and loaded once into a
read-only podman image store beside it (``store``) that every Ceph node's podman lists,
rather than unpacked into each node at its first boot. Only the simulated lab runs
this image; a real lab pulls upstream's.

The image holds the release its tag names (or ``cluster.ceph.version`` for a tag that
names none), never this machine's under another release's name: this machine's release
from its own packages; a release another Debian suite ships (``SUITES``: trixie's
18.2.7) from a root of that suite made once under the image cache (``debian_root``),
its packages read from the root's dpkg records (``dpkg-query --admindir``), its files
read under the root, and ``ldd`` run in the root (``chroot ROOT ldd``: the root's own
loader and libraries); any other release is refused with the ones this machine can make.

One package of trixie cannot serve ceph-mgr: python3-bcrypt 4.2 is built with PyO3,
whose modules refuse Python subinterpreters, and ceph-mgr runs each of its modules in
one, its ``mgr_util`` importing bcrypt first thing: every module fails to load ("PyO3
modules do not yet support subinterpreters", pyca/bcrypt#694) and the cluster stays
HEALTH_WARN. The root gets this machine's Debian 12 python3-bcrypt 3.2.2 instead (cffi,
built for the stable ABI, so trixie's Python 3.13 loads it), installed by the root's
dpkg so its records say so, and the image is checked to import bcrypt in a subinterpreter.

One file of trixie's Ceph is changed as the image is written (the root stays as apt
made it): ceph-mgr 18.2.7 leaves an AttributeError set when a module class has no
NOTIFY_TYPES, and under Python 3.13 its next import, the one that finds the module's
standby class, fails on it, so a standby manager starts no module (its prometheus
module never answers). ``PATCHES`` names the diff, shipped in ``labctl/data/patches``
with its reasons, that gives every module class an empty NOTIFY_TYPES; it is applied
exactly (``text_patch``) or the build is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from labctl.errors import LabctlError
from labctl.sim import debian_root, text_patch
from labctl.sim import engine as sim_engine
from labctl.sim import images as sim_images

# The packages whose programs the ceph layer's units and steps start (render/ceph.py:
# the daemons, and `tool` for ceph, ceph-mon, monmaptool, ceph-osd, ceph-bluestore-tool),
# and the mgr's always-on modules.
SEEDS = ("ceph-mon", "ceph-mgr", "ceph-mgr-modules-core", "ceph-osd", "ceph-mds", "ceph-common")
PROGRAMS = (
    "/usr/bin/ceph", "/usr/bin/ceph-mon", "/usr/bin/ceph-mgr", "/usr/bin/ceph-osd",
    "/usr/bin/ceph-mds", "/usr/bin/monmaptool", "/usr/bin/ceph-bluestore-tool",
)  # fmt: skip
PLUGINS = "/usr/lib/x86_64-linux-gnu/ceph"
PYTHON = "/usr/lib/python3/dist-packages/"
CEPH_PYTHON = ("rados", "rbd", "cephfs", "rgw")
# What a running system needs that no package's file list holds: who root and ceph are
# (upstream's image has the ceph user, uid 167), and the folders the units mount over.
PASSWD = "root:x:0:0:root:/root:/bin/sh\nceph:x:167:167:Ceph:/var/lib/ceph:/usr/sbin/nologin\n"
GROUP = "root:x:0:\nceph:x:167:\n"
FOLDERS = ("etc/ceph", "var/lib/ceph", "var/log/ceph", "run", "root", "dev", "proc", "sys")
# Files nothing runs from: documentation, manual pages, translations, bug-report hooks.
LEFT_OUT = (
    "/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/share/locale/",
    "/usr/share/lintian/", "/usr/share/bug/", "/usr/share/doc-base/",
)  # fmt: skip
DPKG_FIELDS = (
    "${Package}\t${Version}\t${db:Status-Abbrev}\t${Depends}\t${Pre-Depends}\t${Provides}\n"
)
EPOCH = sim_images.EPOCH
PODMAN = "/usr/bin/podman"
HOST = ""  # this machine's own root, as the prefix of the paths read
# Ceph releases a Debian suite other than this machine's ships (upstream's version ->
# the suite); `ceph-mon`'s version in the root made of it is checked to be the same.
SUITES = {"18.2.7": "trixie"}
HOST_SUITE = "bookworm"  # Debian 12, this machine's (scripts/setup.sh installs its Ceph)
# The bcrypt a root's ceph-mgr can import in its modules' subinterpreters (see above):
# fetched with this machine's apt, installed with the root's dpkg.
BCRYPT = ("python3-bcrypt", "3.2.2-1")
# Files of a release's image changed from its packages' (see above): the release -> the
# diffs in labctl/data/patches, each naming its file.
PATCHES = {"18.2.7": ("ceph-18.2.7-mgr_module-notify-types.diff",)}
PATCH_DIR = Path(__file__).resolve().parents[1] / "data" / "patches"
SUBINTERPRETER_CHECK = (
    "import _interpreters; "
    "said = _interpreters.run_string(_interpreters.create('legacy'), 'import bcrypt'); "
    "raise SystemExit(said and said.formatted)"
)


def mgr_bcrypt(root: Path, run: debian_root.Runner) -> None:
    """A root's python3-bcrypt replaced by this machine's 3.2.2 (not PyO3), then checked
    to import in a subinterpreter as ceph-mgr's modules do."""
    name, version = BCRYPT
    with tempfile.TemporaryDirectory(dir=root / "tmp") as folder:
        run(["apt-get", "download", f"{name}={version}"], f"apt-get download {name}", Path(folder))
        debs = sorted(Path(folder).glob(f"{name}_*.deb"))
        if not debs:
            raise LabctlError(f"apt-get download {name}={version} gave no package")
        inside = "/" + str(debs[0].relative_to(root))
        run(["chroot", str(root), "dpkg", "-i", inside], f"dpkg -i {debs[0].name}", None)
    run(
        ["chroot", str(root), "python3", "-c", SUBINTERPRETER_CHECK],
        "import bcrypt in a Python subinterpreter, as ceph-mgr's modules do",
        None,
    )


def patch_files(release: str | None) -> list[Path]:
    """The diffs the image of ``release`` is written with (none for most). Pure."""
    return [PATCH_DIR / name for name in PATCHES.get(release or "", ())]


def patched(
    found: Mapping[str, tuple[str, str]], patches: Iterable[Path]
) -> dict[str, tuple[str, str]]:
    """The image's entries ``patches`` change, as ("data", text): each diff applied to
    the file it names, which the image must hold as a file."""
    changed: dict[str, tuple[str, str]] = {}
    for patch in patches:
        diff = text_patch.parse(patch.read_text(), patch.name)
        kind, source = found.get(diff.path.lstrip("/"), ("", ""))
        if kind != "file":
            raise LabctlError(f"{patch.name} changes {diff.path}, which the Ceph image lacks")
        text = Path(source).read_text(encoding="utf-8")
        changed[diff.path.lstrip("/")] = ("data", text_patch.apply(text, diff, patch.name))
    return changed


def upstream(version: str) -> str:
    """Debian's version of a package -> upstream's (``18.2.7+ds-1+deb13u1`` -> 18.2.7). Pure."""
    return version.split(":", 1)[-1].split("+", 1)[0].split("-", 1)[0]


def _release_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def refusal(want: str, have: str | None) -> str:
    """Why the Ceph image of release ``want`` cannot be made here. Pure."""
    can = [f"{have} (this machine's, Debian {HOST_SUITE})"] if have else []
    can += [f"{v} (Debian {SUITES[v]})" for v in sorted(SUITES, key=_release_key)]
    return (
        f"the simulated lab makes the Ceph image from Debian's Ceph packages, and no Debian "
        f"suite it knows ships Ceph {want}: this machine can make {' or '.join(can)}; set "
        "cluster.ceph.version (and the tag of cluster.ceph.image) to one of those"
    )


def suite(want: str | None, have: str | None) -> str | None:
    """Where the Ceph image of release ``want`` comes from: None for this machine's
    packages (``want`` is ``have``, or no release is named), else the Debian suite that
    ships it; refused (LabctlError) for any other release. Pure."""
    if want is None or want == have:
        return None
    if want in SUITES:
        return SUITES[want]
    raise LabctlError(refusal(want, have))


def wanted(name: str, version: str | None) -> str | None:
    """The release the image ``name`` is to hold: its tag's, else ``version``
    (cluster.ceph.version). Pure."""
    return sim_engine.image_tag_version(name) or version


def under(root: str, path: str) -> str:
    """An image path (``/usr/bin/ceph``) as this machine reads it in ``root``. Pure."""
    return root + path if root else path


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    depends: tuple[tuple[str, ...], ...]  # each dependency: its alternatives' names
    provides: tuple[str, ...]


def _names(field: str) -> tuple[tuple[str, ...], ...]:
    """``a (>= 1) | b, c:any`` -> (("a", "b"), ("c",))."""
    found = []
    for dep in field.split(","):
        alts = tuple(a.split()[0].split(":")[0] for a in dep.split("|") if a.strip())
        if alts:
            found.append(alts)
    return tuple(found)


def parse_status(text: str) -> dict[str, Package]:
    """dpkg-query -W -f DPKG_FIELDS's answer: the installed packages. Pure."""
    found: dict[str, Package] = {}
    for line in text.splitlines():
        name, version, status, depends, pre, provides = (line.split("\t") + [""] * 6)[:6]
        if not status.startswith("ii"):
            continue
        found[name] = Package(
            name,
            version,
            _names(depends) + _names(pre),
            tuple(p[0] for p in _names(provides)),
        )
    return found


def closure(packages: Mapping[str, Package], seeds: Iterable[str]) -> list[Package]:
    """``seeds`` and every installed package they depend on, by name; of alternatives, the
    first one installed (or provided by an installed package). Pure."""
    provided = {v: p.name for p in packages.values() for v in p.provides}
    seen: dict[str, Package] = {}
    todo = list(seeds)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in packages:
            raise LabctlError(f"the Ceph image needs Debian's {name}, which is not installed")
        seen[name] = packages[name]
        for alternatives in packages[name].depends:
            for alt in alternatives:
                have = alt if alt in packages else provided.get(alt)
                if have:
                    todo.append(have)
                    break
    return sorted(seen.values(), key=lambda p: p.name)


def kept(path: str) -> bool:
    """Whether a file of a package goes into the image (not documentation). Pure."""
    return path.startswith("/") and not path.startswith(LEFT_OUT) and path != "/."


def _dpkg_query(root: str) -> list[str]:
    return ["dpkg-query", f"--admindir={under(root, '/var/lib/dpkg')}"]


def installed(root: str = HOST) -> dict[str, Package]:
    """The packages installed in ``root`` (this machine's by default), by its dpkg records."""
    said = subprocess.run(
        [*_dpkg_query(root), "-W", "-f", DPKG_FIELDS], capture_output=True, text=True, check=True
    )
    return parse_status(said.stdout)


def package_files(packages: Iterable[Package], root: str = HOST) -> list[str]:
    """What ``dpkg -L`` says the packages hold that the image keeps (files and links),
    as paths in the image."""
    names = [p.name for p in packages]
    said = subprocess.run(
        [*_dpkg_query(root), "-L", *names], capture_output=True, text=True, check=True
    )
    return sorted(
        {
            p
            for p in said.stdout.splitlines()
            if kept(p) and (os.path.islink(under(root, p)) or os.path.isfile(under(root, p)))
        }
    )


def elf_files(paths: Iterable[str]) -> list[str]:
    """The programs and Ceph's plugins and Python extensions: what ldd is asked about."""
    return [
        p
        for p in paths
        if p in PROGRAMS
        or (p.startswith(PLUGINS) and ".so" in p)
        or (p.startswith(PYTHON) and p.endswith(".so") and any(k in p for k in CEPH_PYTHON))
    ]


def missing_libraries(
    entries: Mapping[str, tuple[str, str]], elves: Iterable[str], root: str = HOST
) -> list[str]:
    """The libraries ldd says ``elves`` load that the image's entries lack."""
    binaries = [
        e for e in elves if os.path.isfile(under(root, e)) and not _is_script(under(root, e))
    ]
    needed = sim_images.host_closure(sim_images.shared_libraries(binaries, root), root)
    return sorted(p for p in needed if p.count("/") > 1 and p.lstrip("/") not in entries)


def _is_script(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"#!"


def entries(files: Iterable[str], root: str = HOST) -> dict[str, tuple[str, str]]:
    """The layer's paths (no leading slash) -> ("dir", ""), ("file", host path),
    ("link", target) or ("data", text): the files (read in ``root``), each link met on
    the way to them (Debian's merged /usr as the image's own links), the folders they need."""
    found: dict[str, tuple[str, str]] = {}
    for path, (kind, value) in sim_images.host_closure(files, root).items():
        if path.count("/") > 1:  # a link to a folder leads to the folder
            found[path.lstrip("/")] = (
                ("dir", "") if kind == "file" and os.path.isdir(value) else (kind, value)
            )
    for link, target in sim_images.MERGED_USR:
        found[link] = ("link", target)
    found["etc/passwd"] = ("data", PASSWD)
    found["etc/group"] = ("data", GROUP)
    found["tmp"] = ("dir", "")
    found["var/tmp"] = ("dir", "")
    for folder in FOLDERS:
        found[folder] = ("dir", "")
    for path in list(found):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            found.setdefault("/".join(parts[:depth]), ("dir", ""))
    return found


class _Hashing:
    """A file that hashes and counts what is written through it."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.hash, self.size = out, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.out.write(data)


def write_layer(found: Mapping[str, tuple[str, str]], out: IO[bytes]) -> tuple[str, int]:
    """The uncompressed layer tar of ``found``, in name order with fixed times and owners
    (the same inputs give the same bytes); its digest and size."""
    hashing = _Hashing(out)
    with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for name, (kind, value) in sorted(found.items()):
            entry = tarfile.TarInfo(name)
            entry.mtime = EPOCH
            if kind == "dir":
                entry.type = tarfile.DIRTYPE
                entry.mode = 0o1777 if name in ("tmp", "var/tmp") else 0o755
                tar.addfile(entry)
            elif kind == "link":
                entry.type, entry.mode, entry.linkname = tarfile.SYMTYPE, 0o777, value
                tar.addfile(entry)
            elif kind == "data":
                data = value.encode()
                entry.size, entry.mode = len(data), 0o644
                tar.addfile(entry, _bytes(data))
            else:
                stat = os.stat(value)
                entry.size, entry.mode = stat.st_size, stat.st_mode & 0o7777
                with open(value, "rb") as handle:
                    tar.addfile(entry, handle)
    return "sha256:" + hashing.hash.hexdigest(), hashing.size


def _bytes(data: bytes) -> IO[bytes]:
    return io.BytesIO(data)


def write_archive(name: str, found: Mapping[str, tuple[str, str]], dest: Path) -> None:
    """The OCI image layout of ``name`` (one layer: ``found``) as a tar at ``dest``, as
    ``podman load`` reads it; written beside it and renamed, so it is whole or absent."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as work:
        layer_path = Path(work) / "layer.tar"
        with layer_path.open("wb") as out:
            layer_digest, layer_size = write_layer(found, out)
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "WorkingDir": "/",
            },
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "history": [{"created_by": "labctl.sim.ceph_image (Debian's Ceph packages)"}],
        }
        config_bytes = json.dumps(config, sort_keys=True).encode()
        config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config_bytes),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest,
                    "size": layer_size,
                }
            ],
        }
        manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
        manifest_digest = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest,
                    "size": len(manifest_bytes),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1],
                    },
                }
            ],
        }
        small = {
            "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
            "index.json": json.dumps(index, sort_keys=True).encode(),
            f"blobs/sha256/{config_digest[7:]}": config_bytes,
            f"blobs/sha256/{manifest_digest[7:]}": manifest_bytes,
        }
        partial = Path(work) / "image.tar"
        with tarfile.open(partial, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for folder in ("blobs", "blobs/sha256"):
                info = tarfile.TarInfo(folder)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
                tar.addfile(info)
            for file_name, data in small.items():
                info = tarfile.TarInfo(file_name)
                info.size, info.mode, info.mtime = len(data), 0o644, EPOCH
                tar.addfile(info, _bytes(data))
            info = tarfile.TarInfo(f"blobs/sha256/{layer_digest[7:]}")
            info.size, info.mode, info.mtime = layer_size, 0o644, EPOCH
            with layer_path.open("rb") as layer:
                tar.addfile(info, layer)
        os.chmod(partial, 0o644)
        os.replace(partial, dest)


def stamp(
    name: str,
    packages: Iterable[Package],
    source: str | None = None,
    patches: Iterable[Path] = (),
) -> str:
    """The hash of the image's inputs: its name, this writer, where its packages come
    from (None: this machine; else a Debian suite), each package and version, the
    diffs it is written with."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(Path(sim_images.__file__).read_bytes())
    h.update(Path(text_patch.__file__).read_bytes())
    for patch in patches:
        h.update(patch.read_bytes())
    h.update(name.encode())
    if source is not None:
        h.update(f"debian {source}\n".encode())
    for package in packages:
        h.update(f"{package.name}={package.version}\n".encode())
    return h.hexdigest()


def host_version(packages: Mapping[str, Package]) -> str | None:
    """The Ceph release of ``packages`` (ceph-mon's upstream version); None without it."""
    mon = packages.get("ceph-mon")
    return upstream(mon.version) if mon else None


def check(name: str, version: str | None) -> str | None:
    """Refuse (LabctlError) before anything is made when the Ceph image ``name`` cannot
    be made here; the Debian suite it is made from (None: this machine's packages)."""
    return suite(wanted(name, version), host_version(installed()))


def build(
    name: str,
    image_root: Path,
    version: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> Path:
    """The archive of the Ceph image ``name`` (of release ``version`` when its tag names
    none) under ``image_root``, written unless one of the same inputs is there."""
    want = wanted(name, version)
    found_here = installed()  # dpkg's records are read once per root
    source = suite(want, host_version(found_here))
    root = HOST
    if source is not None:
        root = str(debian_root.make(image_root, source, "ceph", SEEDS, progress, mgr_bcrypt))
        found_here = installed(root)
        made = host_version(found_here)
        if made != want:
            raise LabctlError(
                f"the Debian {source} root at {root} holds Ceph {made}, not {want} (the suite "
                "moved on): remove the root to make it again, and set cluster.ceph.version "
                f"to what Debian {source} ships"
            )
    packages = closure(found_here, SEEDS)
    patches = patch_files(want or host_version(found_here))
    path = image_root / stamp(name, packages, source, patches)[:24] / sim_images.archive_name(name)
    if path.exists():
        return path
    where = f"the Debian {source} root" if source else "this machine's packages"
    progress(f"writing the Ceph image {name} (Ceph {want or 'of this machine'}) from {where}")
    files = package_files(packages, root)
    found = entries(files, root)
    found.update(patched(found, patches))
    missing = missing_libraries(found, elf_files(files), root)
    if missing:
        raise LabctlError(
            f"the Ceph image would lack {', '.join(missing)}, which ldd says its programs "
            "load but no package it holds lists"
        )
    write_archive(name, found, path)
    return path


def store(name: str, archive: Path) -> Path:
    """A read-only podman image store holding ``archive`` (the image ``name``), beside it:
    loaded once with this machine's podman, then listed in each Ceph node's
    storage.conf (``additionalimagestores``), so the nodes share its layer rather than
    each unpacking a copy at its first boot."""
    folder = archive.parent / "store"
    done = folder / ".loaded"
    if done.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    with tempfile.TemporaryDirectory() as run:
        said = subprocess.run(
            [PODMAN, "--root", str(folder), "--runroot", run, "--storage-driver", "overlay",
             "--events-backend", "none", "load", "-q", "-i", str(archive)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if said.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            raise LabctlError(f"podman load -i {archive} failed: {said.stderr.strip()}")
        # Each node's podman opens the store read-only; without this check it would find
        # out at its first `docker run`.
        listed = subprocess.run(
            [PODMAN, "--root", str(folder), "--runroot", run, "--storage-driver", "overlay",
             "--events-backend", "none", "image", "exists", name],
            check=False,
        )  # fmt: skip
        if listed.returncode != 0:
            raise LabctlError(f"podman load -i {archive} did not give {name}")
    done.write_text(name + "\n")
    return folder
