"""The stand-in installer VM nodes boot: a Debian kernel, busybox, coreos-installer, Ignition.

No Flatcar or Fedora CoreOS live image can be had on this machine, so the simulated
lab's VM nodes network-boot this instead. It reads the same kernel arguments a
real install gets from labctl's iPXE script (``labctl.config``, ``.disk``,
``.report``, and Fedora CoreOS's ``coreos.inst.install_dev`` and
``coreos.inst.ignition_url``), DHCPs, starts a real systemd-udevd (coreos-installer
refuses to run without its socket) and runs the real coreos-installer (built from its
crate by scripts/build-coreos-installer.sh) onto the OS disk: ``install DISK
--ignition-url URL --insecure-ignition`` as coreos-installer-service makes them from
the kernel arguments, plus ``--image-file`` the stand-in OS image (``osimage.py``) on
the VM's second disk (``IMAGE_DISK``) and ``--insecure``, because the stand-in is
unsigned. coreos-installer lays the image's GPT and writes the Ignition config into its
``boot`` partition; the installer hands that config to the real Ignition (Debian's
2.14, as ``/usr/lib/ignition/user.ign``: ``--stage=fetch``, then ``--stage=files``
onto the ``root`` partition), POSTs the result (Ignition's own CRITICAL lines when it
fails) with this install's token, read from the live system's own Ignition (the
installer config at ``ignition.config.url``), and powers off. A Flatcar server gets
the same: flatcar-install, which its real install runs, cannot run here.

It is built from the machine's own packages (linux-image, busybox-static,
ignition, passwd, udev, util-linux, ipmitool; coreos-installer from its cache) into a
cache keyed by every input's hash, so it is built
once per machine and again only when a package changes; the result is laid out
as a Flatcar release mirror with ``.DIGESTS`` files (and ``version.txt``, and
token disk image and signature files, which it never writes) and, in the same directory,
as a Fedora CoreOS mirror (``stable.json``, ``testing.json``, ``next.json``
stream metadata with SHA-256s, and a token rootfs), so ``labctl boot fetch``
fetches and verifies it exactly as it would the real ones. Booted with Fedora
CoreOS's arguments it fetches the rootfs from ``coreos.live.rootfs_url`` as the
live initramfs would, and reports its size.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from labctl.errors import LabctlError
from labctl.sim.osrelease import SIM_VERSION

CACHE = Path(os.environ.get("LABCTL_INSTALLER_CACHE", "/var/cache/labctl/installer"))
IGNITION = Path("/usr/lib/dracut/modules.d/30ignition/ignition")
BUSYBOX = Path("/bin/busybox")
# coreos-installer, built from its crate by scripts/build-coreos-installer.sh into this
# cache (the script's default as root; LABCTL_COREOS_INSTALLER_CACHE as the script reads it).
COREOS_INSTALLER_VERSION = "0.27.0"
COREOS_INSTALLER = (
    Path(os.environ.get("LABCTL_COREOS_INSTALLER_CACHE", "/var/cache/labctl/coreos-installer"))
    / COREOS_INSTALLER_VERSION
    / "bin"
    / "coreos-installer"
)
UDEVADM = Path("/usr/bin/udevadm")
# systemd-udevd is udevadm under another name (Debian links one to the other).
UDEVD = "lib/systemd/systemd-udevd"
# Dynamically linked programs: what Ignition runs for the passwd section; ipmitool,
# which asks the board's BMC over /dev/ipmi0 (in-band, as an OS would); and what
# coreos-installer runs: udevadm (settle, and as systemd-udevd: coreos-installer
# refuses to run without udevd's socket), lsblk and blkid (util-linux) to find the
# partitions it wrote.
PROGRAMS = (
    Path("/usr/sbin/usermod"),
    Path("/usr/bin/ipmitool"),
    UDEVADM,
    Path("/usr/bin/lsblk"),
    Path("/usr/sbin/blkid"),
)
# udev's rule that probes block devices (its blkid builtin) for their file systems'
# labels: coreos-installer, with udevd running, trusts lsblk, which reads the labels from
# udev's database, to find the partition labelled boot that it writes Ignition into.
UDEV_RULES = (Path("/usr/lib/udev/rules.d/60-persistent-storage.rules"),)
# The second disk the VM's installer reads the OS image from (virtio-blk, read-only).
IMAGE_DISK = "/dev/vda"
MODULES = (
    "virtio_pci", "virtio_net", "virtio_scsi", "sd_mod", "virtio_blk",
    "crc32c_generic", "crct10dif_generic", "ext4",
    "ipmi_msghandler", "ipmi_si", "ipmi_devintf",
)  # fmt: skip
KERNEL_NAME = "flatcar_production_pxe.vmlinuz"
INITRD_NAME = "flatcar_production_pxe_image.cpio.gz"
MARK = "LABCTL-INSTALLER"
# Fedora CoreOS's names for the same kernel and initrd, and a token rootfs (the
# stand-in needs none; fetching it proves the boot service serves it).
FCOS_RELEASE = "0.labctl.stand-in"
FCOS_NAMES = {
    "kernel": f"fedora-coreos-{FCOS_RELEASE}-live-kernel-x86_64",
    "initramfs": f"fedora-coreos-{FCOS_RELEASE}-live-initramfs.x86_64.img",
    "rootfs": f"fedora-coreos-{FCOS_RELEASE}-live-rootfs.x86_64.img",
}
FCOS_ROOTFS = b"labctl stand-in rootfs: the stand-in installer runs from its initrd alone\n"
FCOS_STREAMS = ("stable", "testing", "next")
# Flatcar's disk image and its signature: tokens (the stand-in writes no image), there
# so that `labctl boot fetch` caches and the boot service serves them as real ones.
IMAGE_NAME = "flatcar_production_image.bin.bz2"
IMAGE = b"labctl stand-in image: the stand-in installer writes no image\n"
IMAGE_SIGNATURE = b"labctl stand-in signature: nothing checks it\n"
# The release version.txt names (what the sim's nodes say in os-release without os.version).
FLATCAR_RELEASE = SIM_VERSION
# Bumped when the mirror's layout changes, so a cached mirror of the old one is rebuilt.
LAYOUT = "3"

# The initrd's /init and the script udhcpc runs on a lease: shell files beside this
# module (package data), shellcheck-checked. /init reads the modules to load from
# MODULES_LIST, which the build writes (nothing is pasted into a script).
INIT = resources.files(__package__).joinpath("installer-init.sh").read_text("utf-8")
UDHCPC_SCRIPT = resources.files(__package__).joinpath("installer-udhcpc.sh").read_text("utf-8")
MODULES_LIST = "etc/labctl-modules"
IMAGE_DISK_FILE = "etc/labctl-image-disk"


@dataclass(frozen=True)
class Inputs:
    kernel: Path
    modules: Path
    version: str


def kernel_inputs() -> Inputs:
    kernels = sorted(Path("/boot").glob("vmlinuz-*"))
    if not kernels:
        raise LabctlError(
            "no Debian kernel in /boot; it is in the Debian package linux-image-amd64"
        )
    kernel = kernels[-1]
    version = kernel.name.removeprefix("vmlinuz-")
    return Inputs(kernel, Path("/lib/modules") / version, version)


def module_order(modules_dep: str, wanted: tuple[str, ...]) -> list[str]:
    """Module paths in load order: each after everything it depends on (modprobe's order)."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in modules_dep.splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        name = Path(path).name.split(".ko")[0].replace("-", "_")
        by_name[name] = path
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in reversed(deps.get(path, [])):
            visit(dep)
        order.append(path)

    for name in wanted:
        found = by_name.get(name)
        if found is not None:  # built into the kernel when absent
            visit(found)
    return order


def _libraries(program: Path) -> list[Path]:
    out = subprocess.run(["ldd", str(program)], capture_output=True, text=True, check=False)
    found = []
    for line in out.stdout.splitlines():
        parts = line.split()
        for part in parts:
            if part.startswith("/"):
                found.append(Path(part))
    return found


def _files(inputs: Inputs) -> dict[str, Path]:
    """Every file in the initrd by its path there, from the machine."""
    needs = (
        (BUSYBOX, "busybox-static"),
        (IGNITION, "ignition"),
        (PROGRAMS[1], "ipmitool"),
        (UDEVADM, "udev"),
        (PROGRAMS[3], "util-linux"),
        (UDEV_RULES[0], "udev"),
    )
    for needed, package in needs:
        if not needed.exists():
            raise LabctlError(f"{needed} is missing; it is in the Debian package {package}")
    if not COREOS_INSTALLER.exists():
        raise LabctlError(
            f"{COREOS_INSTALLER} is missing; scripts/build-coreos-installer.sh builds it"
        )
    files: dict[str, Path] = {
        "bin/busybox": BUSYBOX,
        "usr/bin/ignition": IGNITION,
        "usr/bin/coreos-installer": COREOS_INSTALLER,
    }
    for program in (*PROGRAMS, *UDEV_RULES):
        files[str(program).lstrip("/")] = program
    for program in (IGNITION, COREOS_INSTALLER, *PROGRAMS):
        for lib in _libraries(program):
            files[str(lib).lstrip("/")] = lib.resolve()
    dep = (inputs.modules / "modules.dep").read_text()
    for path in module_order(dep, MODULES):
        files[f"lib/modules/{inputs.version}/{path}"] = inputs.modules / path
    return files


def _modules_text(inputs: Inputs) -> str:
    """What /init loads, in order: one module's path a line."""
    dep = (inputs.modules / "modules.dep").read_text()
    return "".join(f"/lib/modules/{inputs.version}/{path}\n" for path in module_order(dep, MODULES))


def _cpio(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive of (path, mode, content); directories have empty content."""
    out = io.BytesIO()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        encoded = name.encode() + b"\0"
        header = "070701" + "".join(
            f"{v:08X}" for v in (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
        )
        out.write(header.encode() + encoded)
        out.write(b"\0" * (-(110 + len(encoded)) % 4))
        out.write(data)
        out.write(b"\0" * (-len(data) % 4))
    return out.getvalue()


def made_entries(inputs: Inputs) -> list[tuple[str, int, bytes]]:
    """The initrd's entries made here rather than copied from the machine: /init, what it
    reads, and systemd-udevd as a symbolic link to udevadm."""
    return [
        ("init", 0o100755, INIT.encode()),
        (MODULES_LIST, 0o100644, _modules_text(inputs).encode()),
        (IMAGE_DISK_FILE, 0o100644, f"{IMAGE_DISK}\n".encode()),
        ("etc/udhcpc.script", 0o100755, UDHCPC_SCRIPT.encode()),
        # Ignition relabels for SELinux; with SELinux off a no-op setfiles does.
        ("usr/sbin/setfiles", 0o100755, b"#!/bin/sh\nexit 0\n"),
        (UDEVD, 0o120777, str(UDEVADM).encode()),
    ]


def build_initrd(inputs: Inputs) -> bytes:
    files = _files(inputs)
    entries: list[tuple[str, int, bytes]] = []
    dirs = {"proc", "sys", "dev", "run", "tmp", "sysroot", "etc", "usr/sbin", "sbin", "lib64"}
    dirs.update({"lib/systemd", "etc/udev/rules.d"})
    for path in files:
        parts = path.split("/")[:-1]
        dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    for d in sorted(dirs):
        entries.append((d, 0o040755, b""))
    entries += made_entries(inputs)
    for path, source in sorted(files.items()):
        entries.append((path, 0o100755, source.read_bytes()))
    return gzip.compress(_cpio(entries), compresslevel=6, mtime=0)


def cache_key(inputs: Inputs) -> str:
    scripts = INIT + _modules_text(inputs) + UDHCPC_SCRIPT
    digest = hashlib.sha256(scripts.encode() + LAYOUT.encode())
    for path, source in sorted({**_files(inputs), "kernel": inputs.kernel}.items()):
        stat = source.stat()
        digest.update(f"{path} {source} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def digests_text(name: str, data: bytes) -> str:
    return f"# SHA512 HASH\n{hashlib.sha512(data).hexdigest()}  {name}\n"


def stream_metadata(stream: str, files: dict[str, bytes]) -> dict[str, object]:
    """Fedora CoreOS stream metadata for the stand-in, locations relative to it."""
    pxe = {
        kind: {
            "location": FCOS_NAMES[kind],
            "signature": f"{FCOS_NAMES[kind]}.sig",  # none is made: fetch without a keyring
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        for kind, data in files.items()
    }
    metal = {"release": FCOS_RELEASE, "formats": {"pxe": pxe}}
    return {"stream": stream, "architectures": {"x86_64": {"artifacts": {"metal": metal}}}}


def build(cache: Path = CACHE) -> Path:
    """The stand-in as a release mirror directory (built unless cached); its path."""
    inputs = kernel_inputs()
    mirror = cache / cache_key(inputs)
    if (mirror / f"{FCOS_STREAMS[-1]}.json").exists():
        return mirror
    work = cache / f".build-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    kernel = inputs.kernel.read_bytes()
    initrd = build_initrd(inputs)
    for name, data in ((KERNEL_NAME, kernel), (INITRD_NAME, initrd), (IMAGE_NAME, IMAGE)):
        (work / name).write_bytes(data)
        (work / f"{name}.DIGESTS").write_text(digests_text(name, data))
    (work / f"{IMAGE_NAME}.sig").write_bytes(IMAGE_SIGNATURE)
    (work / "version.txt").write_text(f"FLATCAR_VERSION={FLATCAR_RELEASE}\n")
    fcos = {"kernel": kernel, "initramfs": initrd, "rootfs": FCOS_ROOTFS}
    for kind, data in fcos.items():
        (work / FCOS_NAMES[kind]).write_bytes(data)
    for stream in FCOS_STREAMS:  # written last: build() takes the last one as "complete"
        metadata = stream_metadata(stream, fcos)
        (work / f"{stream}.json").write_text(json.dumps(metadata, indent=2) + "\n")
    shutil.rmtree(mirror, ignore_errors=True)
    work.rename(mirror)
    return mirror


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else CACHE))
