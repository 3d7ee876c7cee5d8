"""The stand-in OS disk image: laid out as a Fedora CoreOS metal image is, built here once.

No Fedora CoreOS or Flatcar disk image can be had on this machine, yet the install
commands labctl renders should run against the real installer programs
(coreos-installer, built from its crate by ``scripts/build-coreos-installer.sh``).
coreos-installer copies an image's GPT onto the disk and then writes the Ignition
config into the partition labelled ``boot`` (``ignition/config.ign``), where the
installed system's first boot reads it. So this image has Fedora CoreOS's partition
layout and names: ``BIOS-BOOT`` (BIOS GRUB), ``EFI-SYSTEM`` (EFI system partition),
``boot`` (ext4, file system label ``boot``: a Boot Loader Specification entry and the
kernel) and ``root`` (file system label ``root``: an ``/etc/os-release`` naming the
stand-in). It is built from this machine's packages (sgdisk, mke2fs, the Debian kernel)
into a cache keyed by its inputs. It is a stand-in, and docs/os.md says so: the EFI
system partition is left unformatted (no dosfstools here), and the system on it does
not boot yet (no boot loader is installed in it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from labctl.errors import LabctlError

CACHE = Path(os.environ.get("LABCTL_OS_IMAGE_CACHE", "/var/cache/labctl/os-image"))
IMAGE_NAME = "labctl-stand-in-metal.x86_64.raw"
RELEASE = "0.labctl.stand-in"
MIB = 1024 * 1024
SECTOR = 512
# Bumped when the layout or contents change, so a cached image of the old one is rebuilt.
LAYOUT = "1"


@dataclass(frozen=True)
class Partition:
    """One GPT partition: its number, GPT name, sgdisk type code and size in MiB."""

    number: int
    name: str
    type_code: str
    size_mib: int
    label: str | None  # the ext4 file system's label; None: left unformatted


# Fedora CoreOS's metal image: the same partition numbers, GPT names and types
# (smaller sizes: nothing here needs 384 MiB of /boot).
PARTITIONS = (
    Partition(1, "BIOS-BOOT", "EF02", 1, None),
    Partition(2, "EFI-SYSTEM", "EF00", 2, None),
    Partition(3, "boot", "8300", 24, "boot"),
    Partition(4, "root", "8300", 8, "root"),
)
FIRST_MIB = 1  # the protective MBR, the GPT and alignment before partition 1


def os_release() -> str:
    return "\n".join(
        [
            'NAME="labctl stand-in OS"',
            "ID=labctl-stand-in",
            f"VERSION_ID={RELEASE}",
            f'PRETTY_NAME="labctl stand-in OS {RELEASE} (laid out as Fedora CoreOS)"',
            "",
        ]
    )


def bls_entry(kernel_version: str) -> str:
    """The boot partition's Boot Loader Specification entry, as Fedora CoreOS has one."""
    return "\n".join(
        [
            f"title labctl stand-in OS {RELEASE}",
            f"version {kernel_version}",
            "linux /vmlinuz",
            "options root=LABEL=root rw ignition.platform.id=metal console=ttyS0,115200n8",
            "",
        ]
    )


def _kernel() -> tuple[Path, str]:
    kernels = sorted(Path("/boot").glob("vmlinuz-*"))
    if not kernels:
        raise LabctlError(
            "no Debian kernel in /boot; it is in the Debian package linux-image-amd64"
        )
    return kernels[-1], kernels[-1].name.removeprefix("vmlinuz-")


def cache_key() -> str:
    kernel, version = _kernel()
    stat = kernel.stat()
    digest = hashlib.sha256(
        f"{LAYOUT}\n{PARTITIONS}\n{kernel} {stat.st_size} {stat.st_mtime_ns}\n".encode()
        + os_release().encode()
        + bls_entry(version).encode()
    )
    return digest.hexdigest()[:16]


def _run(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LabctlError(f"{args[0]} failed building the stand-in OS image: {result.stderr}")


def _file_system(work: Path, part: Partition, contents: dict[str, bytes]) -> Path:
    """An ext4 image of ``part``'s size holding ``contents`` (path: bytes), by mke2fs -d."""
    tree = work / f"tree-{part.name}"
    for path, data in contents.items():
        target = tree / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    tree.mkdir(exist_ok=True)
    image = work / f"{part.name}.ext4"
    assert part.label is not None
    # Fixed UUID and hash seed and no timestamps from the clock: the same inputs, the same bytes.
    env = {**os.environ, "E2FSPROGS_FAKE_TIME": "1"}
    uuid = hashlib.sha256(f"{RELEASE} {part.name}".encode()).hexdigest()[:32]
    uuid = f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:]}"
    args = ["mke2fs", "-q", "-F", "-t", "ext4", "-L", part.label, "-U", uuid]
    args += ["-E", f"hash_seed={uuid}", "-d", str(tree), str(image), f"{part.size_mib}M"]
    result = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise LabctlError(f"mke2fs failed building the stand-in OS image: {result.stderr}")
    return image


def build_image(path: Path) -> None:
    """Write the stand-in image to ``path``: GPT first, then each file system at its offset."""
    kernel, version = _kernel()
    total = FIRST_MIB + sum(p.size_mib for p in PARTITIONS) + 1  # + the backup GPT
    with path.open("wb") as out:
        out.truncate(total * MIB)
    disk_guid = hashlib.sha256(RELEASE.encode()).hexdigest()[:32]
    args = ["sgdisk", "--clear", f"--disk-guid={disk_guid}"]
    start = FIRST_MIB
    for part in PARTITIONS:
        first, last = start * MIB // SECTOR, (start + part.size_mib) * MIB // SECTOR - 1
        guid = hashlib.sha256(f"{RELEASE} {part.name} guid".encode()).hexdigest()[:32]
        args += [
            f"--new={part.number}:{first}:{last}",
            f"--typecode={part.number}:{part.type_code}",
            f"--change-name={part.number}:{part.name}",
            f"--partition-guid={part.number}:{guid}",
        ]
        start += part.size_mib
    _run([*args, str(path)])
    contents = {
        "boot": {
            f"loader/entries/labctl-stand-in-{RELEASE}.conf": bls_entry(version).encode(),
            "vmlinuz": kernel.read_bytes(),
        },
        "root": {"etc/os-release": os_release().encode()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        start = FIRST_MIB
        for part in PARTITIONS:
            if part.label is not None:
                fs = _file_system(Path(tmp), part, contents[part.name])
                with fs.open("rb") as src, path.open("r+b") as out:
                    out.seek(start * MIB)
                    shutil.copyfileobj(src, out, MIB)
            start += part.size_mib


def build(cache: Path = CACHE) -> Path:
    """The stand-in image's path (built unless cached)."""
    folder = cache / cache_key()
    image = folder / IMAGE_NAME
    if image.exists():
        return image
    work = cache / f".build-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    build_image(work / IMAGE_NAME)
    shutil.rmtree(folder, ignore_errors=True)
    work.rename(folder)
    return image


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else CACHE))
