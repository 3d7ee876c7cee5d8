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
stand-in). It is built from this machine's packages (sgdisk, mke2fs, the Debian kernel,
GRUB's BIOS images from grub-pc-bin and its EFI images from grub-efi-amd64-bin, mtools
and dosfstools, busybox-static, OpenSSH's sshd) into a cache keyed by its inputs. It
boots under BIOS firmware (SeaBIOS) as Fedora CoreOS's does: GRUB's boot.img in the
protective MBR, its core.img in ``BIOS-BOOT`` (both written into the image file, as
``grub-bios-setup`` would, without mounting anything). It boots under UEFI firmware
(OVMF) too: ``EFI-SYSTEM`` is a FAT file system (``mkfs.fat``, filled with mtools,
no mount) holding GRUB's x86_64-efi image at the removable-media path
``EFI/BOOT/BOOTX64.EFI``, which firmware with no boot entry of its own for the disk
starts. Both GRUBs carry the same embedded config: find the file system labelled
``boot`` and read its ``grub2/grub.cfg``, which starts the kernel with
``root=LABEL=root`` and a small initramfs that mounts ``root`` and hands over to the
installed system: busybox, sshd and an init (``osimage-init.sh``) that brings the NICs
up from the networkd or NetworkManager files Ignition wrote and starts sshd with the
host key Ignition planted. It is a stand-in, and docs/os.md says so: its EFI GRUB is
Debian's, unsigned (no shim, no Secure Boot), and Ignition's files are applied by the
installer, not by a first-boot Ignition in this initramfs.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from labctl.errors import LabctlError
from labctl.sim import installer

CACHE = Path(os.environ.get("LABCTL_OS_IMAGE_CACHE", "/var/cache/labctl/os-image"))
IMAGE_NAME = "labctl-stand-in-metal.x86_64.raw"
RELEASE = "0.labctl.stand-in"
MIB = 1024 * 1024
SECTOR = 512
# Bumped when the layout or contents change, so a cached image of the old one is rebuilt.
LAYOUT = "5"
MARK = "LABCTL-OS"
# GRUB for BIOS (Debian's grub-pc-bin): boot.img goes in the MBR, core.img in BIOS-BOOT.
GRUB_DIR = Path("/usr/lib/grub/i386-pc")
GRUB_MODULES = (
    "biosdisk", "part_gpt", "ext2", "search", "configfile", "normal", "linux",
    "serial", "terminal", "echo", "test",
)  # fmt: skip
# Offsets in boot.img and in core.img's first sector, from GRUB's include/grub/i386/pc/boot.h
# and util/setup.c: where boot.img reads core.img from, the boot-drive check it skips
# on a hard disk, and diskboot.img's blocklist (start, sectors, segment) for the rest.
BOOT_KERNEL_SECTOR = 0x5C
BOOT_DRIVE_CHECK = 0x66
MBR_CODE = 440  # boot code before the disk signature and the partition table
BLOCKLIST = SECTOR - 12
CORE_SEGMENT = 0x820
# GRUB for UEFI (Debian's grub-efi-amd64-bin): one PE image on the EFI system partition.
GRUB_EFI_DIR = Path("/usr/lib/grub/x86_64-efi")
GRUB_EFI_MODULES = (
    "part_gpt", "ext2", "fat", "search", "configfile", "normal", "linux",
    "serial", "terminal", "echo", "test",
)  # fmt: skip
EFI_LOADER = "EFI/BOOT/BOOTX64.EFI"  # the removable-media path of UEFI's section 3.5.1
# FAT keeps local times with no zone; mtools takes them from SOURCE_DATE_EPOCH, mkfs.fat
# --invariant fixes its own: 2020-01-01, so the same inputs give the same bytes.
FAT_EPOCH = "1577836800"
# The installed system: busybox and sshd with its libraries, and the modules the
# initramfs loads to find the root disk and the NIC.
BUSYBOX = Path("/bin/busybox")
SSHD = Path("/usr/sbin/sshd")
MODULES = (
    "virtio_pci", "virtio_net", "virtio_scsi", "sd_mod", "virtio_blk",
    "crc32c_generic", "crct10dif_generic", "ext4",
)  # fmt: skip
KERNEL_ARGS = "root=LABEL=root rw ignition.platform.id=metal console=ttyS0,115200n8"
INITRAMFS_INIT = resources.files(__package__).joinpath("osimage-initramfs.sh").read_text("utf-8")
SYSTEM_INIT = resources.files(__package__).joinpath("osimage-init.sh").read_text("utf-8")
SSHD_CONFIG = "\n".join(
    [
        "HostKey /etc/ssh/ssh_host_ed25519_key",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        # Ignition 2 writes a user's keys as a fragment, as Flatcar and Fedora CoreOS read them.
        "AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys.d/ignition",
        "PidFile /run/sshd.pid",
        "",
    ]
)
# sudo, as on Flatcar and Fedora CoreOS, where core runs commands as root without a
# password (labctl's SSH sessions run `sudo -n -- COMMAND` for a login user not root):
# Debian's sudo (setuid root), its sudoers plugin, and PAM with pam_permit alone
# (the stand-in has no passwords to check; sudoers decides).
SUDO = Path("/usr/bin/sudo")
SUDO_PLUGIN = Path("/usr/libexec/sudo/sudoers.so")
PAM_PERMIT = Path("/lib/x86_64-linux-gnu/security/pam_permit.so")
SUDOERS = "root ALL=(ALL:ALL) ALL\ncore ALL=(ALL:ALL) NOPASSWD: ALL\n"
PAM_SUDO = "".join(f"{kind} required pam_permit.so\n" for kind in ("auth", "account", "session"))
# The base accounts Ignition's passwd section modifies (usermod), and sshd's own.
ACCOUNTS = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\ncore:x:500:500:core:/home/core:/bin/sh\n"
    "sshd:x:100:65534::/run/sshd:/bin/false\n",
    "etc/group": "root:x:0:\ncore:x:500:\nnogroup:x:65534:\n",
    "etc/shadow": "root:*:19000:0:99999:7:::\ncore:*:19000:0:99999:7:::\nsshd:*:19000::::::\n",
    "etc/gshadow": "root:*::\ncore:!::\nnogroup:*::\n",
}


# Files not root's on a file system (mke2fs -d copies the build tree's owners): core's
# home is core's, as on Flatcar, so Ignition (which writes a user's keys as that user)
# can make its .ssh there.
OWNERS = {"root": {"/home/core": (500, 500)}}


@dataclass(frozen=True)
class Partition:
    """One GPT partition: its number, GPT name, sgdisk type code and size in MiB."""

    number: int
    name: str
    type_code: str
    size_mib: int
    label: str | None  # the file system's label; None: left unformatted
    fs: str = "ext4"  # or "vfat": the EFI system partition


# Fedora CoreOS's metal image: the same partition numbers, GPT names and types
# (smaller sizes: nothing here needs 384 MiB of /boot).
PARTITIONS = (
    Partition(1, "BIOS-BOOT", "EF02", 1, None),
    Partition(2, "EFI-SYSTEM", "EF00", 2, "EFI-SYSTEM", "vfat"),
    Partition(3, "boot", "8300", 40, "boot"),
    Partition(4, "root", "8300", 48, "root"),
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
            "initrd /initramfs.img",
            f"options {KERNEL_ARGS}",
            "",
        ]
    )


def grub_cfg() -> str:
    """``boot/grub2/grub.cfg``: the BLS entry's kernel, initrd and options, on the serial
    console. (Fedora's GRUB reads BLS entries with its blscfg module; Debian's has none.)"""
    return "\n".join(
        [
            "serial --unit=0 --speed=115200",
            "terminal_input serial console",
            "terminal_output serial console",
            "set timeout=0",
            f'menuentry "labctl stand-in OS {RELEASE}" {{',
            f"  linux /vmlinuz {KERNEL_ARGS}",
            "  initrd /initramfs.img",
            "}",
            "",
        ]
    )


# Embedded in core.img: find the boot partition by its label, read its grub.cfg.
GRUB_EMBEDDED = "search --no-floppy --label boot --set=root\nset prefix=($root)/grub2\n"
GRUB_EMBEDDED += "configfile $prefix/grub.cfg\n"


def _kernel() -> tuple[Path, str]:
    kernels = sorted(Path("/boot").glob("vmlinuz-*"))
    if not kernels:
        raise LabctlError(
            "no Debian kernel in /boot; it is in the Debian package linux-image-amd64"
        )
    return kernels[-1], kernels[-1].name.removeprefix("vmlinuz-")


def _root_programs() -> dict[str, Path]:
    """The installed system's programs and the libraries they load, by path on the image."""
    needs = (
        (BUSYBOX, "busybox-static"),
        (SSHD, "openssh-server"),
        (SUDO, "sudo"),
        (PAM_PERMIT, "libpam-modules"),
    )
    for needed, package in needs:
        if not needed.exists():
            raise LabctlError(f"{needed} is missing; it is in the Debian package {package}")
    files = {"bin/busybox": BUSYBOX, "usr/sbin/sshd": SSHD}
    for program in (SUDO, SUDO_PLUGIN, PAM_PERMIT):
        files[str(program).lstrip("/")] = program.resolve()
    for program in (SSHD, SUDO, SUDO_PLUGIN):
        for lib in installer._libraries(program):
            files[str(lib).lstrip("/")] = lib.resolve()
    return files


def _module_paths(version: str) -> list[str]:
    modules = Path("/lib/modules") / version
    return installer.module_order((modules / "modules.dep").read_text(), MODULES)


def _inputs() -> dict[str, Path]:
    """Every file the image is built from, by a name for it (the cache key hashes them)."""
    kernel, version = _kernel()
    files = {"kernel": kernel, **_root_programs()}
    for name in ("boot.img", "kernel.img", *(f"{m}.mod" for m in GRUB_MODULES)):
        files[f"grub/{name}"] = GRUB_DIR / name
    for path in _module_paths(version):
        files[f"modules/{path}"] = Path("/lib/modules") / version / path
    for name in ("kernel.img", *(f"{m}.mod" for m in GRUB_EFI_MODULES)):
        files[f"grub-efi/{name}"] = GRUB_EFI_DIR / name
    for folder, package in ((GRUB_DIR, "grub-pc-bin"), (GRUB_EFI_DIR, "grub-efi-amd64-bin")):
        if not (folder / "kernel.img").exists():
            raise LabctlError(
                f"{folder}/kernel.img is missing; it is in the Debian package {package}"
            )
    return files


def cache_key() -> str:
    _, version = _kernel()
    digest = hashlib.sha256(
        f"{LAYOUT}\n{PARTITIONS}\n".encode()
        + "".join((os_release(), bls_entry(version), grub_cfg(), GRUB_EMBEDDED)).encode()
        + "".join((INITRAMFS_INIT, SYSTEM_INIT, SSHD_CONFIG, *ACCOUNTS.values())).encode()
        + (SUDOERS + PAM_SUDO).encode()
    )
    for name, source in sorted(_inputs().items()):
        stat = source.stat()
        digest.update(f"{name} {source} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _run(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LabctlError(f"{args[0]} failed building the stand-in OS image: {result.stderr}")


# A file system's contents: path -> (bytes, mode); a mode of 0o040755 makes a directory.
Tree = dict[str, tuple[bytes, int]]
DIR = 0o040755


def _file_system(work: Path, part: Partition, contents: Tree) -> Path:
    """An ext4 image of ``part``'s size holding ``contents``, by mke2fs -d."""
    tree = work / f"tree-{part.name}"
    tree.mkdir(exist_ok=True)
    for path, (data, mode) in contents.items():
        target = tree / path
        if mode == DIR:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)
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


def initramfs(version: str) -> bytes:
    """The initramfs: busybox, the disk and NIC modules, and an /init that mounts root."""
    modules = _module_paths(version)
    entries: list[tuple[str, int, bytes]] = []
    paths = [f"lib/modules/{version}/{m}" for m in modules]
    dirs = {"bin", "proc", "sys", "dev", "sysroot", "etc"}
    for path in paths:
        parts = path.split("/")[:-1]
        dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    entries += [(d, DIR, b"") for d in sorted(dirs)]
    entries.append(("init", 0o100755, INITRAMFS_INIT.encode()))
    entries.append(("bin/busybox", 0o100755, BUSYBOX.read_bytes()))
    listing = "".join(f"/{p}\n" for p in paths)
    entries.append(("etc/labctl-modules", 0o100644, listing.encode()))
    for path, module in zip(paths, modules, strict=True):
        source = Path("/lib/modules") / version / module
        entries.append((path, 0o100644, source.read_bytes()))
    return gzip.compress(installer._cpio(entries), compresslevel=6, mtime=0)


def root_tree() -> Tree:
    """The installed system on ``root``: what Ignition's files are then applied to."""
    tree: Tree = {
        d: (b"", DIR)
        for d in ("proc", "sys", "dev", "run", "tmp", "root", "home/core", "var/empty",
                  "etc/systemd/network", "etc/NetworkManager/system-connections")
    }  # fmt: skip
    tree["etc/os-release"] = (os_release().encode(), 0o644)
    tree["etc/ssh/sshd_config"] = (SSHD_CONFIG.encode(), 0o644)
    tree["sbin/init"] = (SYSTEM_INIT.encode(), 0o755)
    for path, text in ACCOUNTS.items():
        tree[path] = (text.encode(), 0o600 if "shadow" in path else 0o644)
    for path, source in _root_programs().items():
        tree[path] = (source.read_bytes(), 0o755)
    tree[str(SUDO).lstrip("/")] = (SUDO.read_bytes(), 0o4755)  # setuid root, as installed
    tree["etc/sudoers"] = (SUDOERS.encode(), 0o440)
    tree["etc/pam.d/sudo"] = (PAM_SUDO.encode(), 0o644)
    return tree


def grub_image(
    work: Path, target: str, modules_dir: Path, modules: tuple[str, ...], name: str
) -> Path:
    """GRUB's image for ``target`` in ``work``, with labctl's embedded config (find the
    ``boot`` partition, read its grub2/grub.cfg) and ``modules`` built in."""
    embedded = work / "grub-embedded.cfg"
    embedded.write_text(GRUB_EMBEDDED)
    image = work / name
    _run(
        ["grub-mkimage", "-O", target, "-d", str(modules_dir), "-c", str(embedded),
         "-p", "/grub2", "-o", str(image), *modules]
    )  # fmt: skip
    return image


def grub_images(work: Path, core_sector: int) -> tuple[bytes, bytes]:
    """GRUB's MBR code (boot.img's first 440 bytes) and core.img, set up as
    ``grub-bios-setup`` sets them up for a core.img embedded at ``core_sector``."""
    core_path = grub_image(work, "i386-pc", GRUB_DIR, GRUB_MODULES, "core.img")
    core = bytearray(core_path.read_bytes())
    core += b"\0" * (-len(core) % SECTOR)
    sectors = len(core) // SECTOR
    bios_boot = next(p for p in PARTITIONS if p.name == "BIOS-BOOT")
    if sectors > bios_boot.size_mib * MIB // SECTOR:
        raise LabctlError(f"GRUB's core.img ({len(core)} bytes) does not fit in BIOS-BOOT")
    # diskboot.img (core.img's first sector) loads the rest from this one blocklist.
    struct.pack_into("<QHH", core, BLOCKLIST, core_sector + 1, sectors - 1, CORE_SEGMENT)
    boot = bytearray((GRUB_DIR / "boot.img").read_bytes())
    struct.pack_into("<Q", boot, BOOT_KERNEL_SECTOR, core_sector)
    boot[BOOT_DRIVE_CHECK : BOOT_DRIVE_CHECK + 2] = b"\x90\x90"  # a hard disk: no check
    return bytes(boot[:MBR_CODE]), bytes(core)


def efi_system_partition(work: Path, part: Partition) -> Path:
    """A FAT image of ``part``'s size holding GRUB's x86_64-efi image at ``EFI_LOADER``,
    with the same embedded config as core.img: mkfs.fat, then mtools (no mount)."""
    for program, package in (("mkfs.fat", "dosfstools"), ("mcopy", "mtools")):
        if shutil.which(program) is None:
            raise LabctlError(f"{program} is missing; it is in the Debian package {package}")
    loader = grub_image(work, "x86_64-efi", GRUB_EFI_DIR, GRUB_EFI_MODULES, "BOOTX64.EFI")
    os.utime(loader, (int(FAT_EPOCH), int(FAT_EPOCH)))
    image = work / f"{part.name}.vfat"
    image.unlink(missing_ok=True)
    volume = hashlib.sha256(f"{RELEASE} {part.name}".encode()).hexdigest()[:8]
    assert part.label is not None
    _run(["mkfs.fat", "-C", "--invariant", "-i", volume, "-n", part.label, str(image),
          str(part.size_mib * 1024)])  # fmt: skip
    env = {**os.environ, "SOURCE_DATE_EPOCH": FAT_EPOCH, "MTOOLS_SKIP_CHECK": "1"}
    folders = [f"::{EFI_LOADER.rsplit('/', i)[0]}" for i in (2, 1)]  # ::EFI, ::EFI/BOOT
    for args in (["mmd", "-i", str(image), *folders],
                 ["mcopy", "-m", "-i", str(image), str(loader), f"::{EFI_LOADER}"]):  # fmt: skip
        done = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
        if done.returncode != 0:
            raise LabctlError(f"{args[0]} failed building the stand-in OS image: {done.stderr}")
    return image


def build_image(path: Path) -> None:
    """Write the stand-in image to ``path``: GPT first, then GRUB in the MBR and
    BIOS-BOOT, then each file system at its offset."""
    kernel, version = _kernel()
    total = FIRST_MIB + sum(p.size_mib for p in PARTITIONS) + 1  # + the backup GPT
    with path.open("wb") as out:
        out.truncate(total * MIB)
    disk_guid = hashlib.sha256(RELEASE.encode()).hexdigest()[:32]
    args = ["sgdisk", "--clear", f"--disk-guid={disk_guid}"]
    start = FIRST_MIB
    offsets: dict[str, int] = {}
    for part in PARTITIONS:
        first, last = start * MIB // SECTOR, (start + part.size_mib) * MIB // SECTOR - 1
        offsets[part.name] = start * MIB
        guid = hashlib.sha256(f"{RELEASE} {part.name} guid".encode()).hexdigest()[:32]
        args += [
            f"--new={part.number}:{first}:{last}",
            f"--typecode={part.number}:{part.type_code}",
            f"--change-name={part.number}:{part.name}",
            f"--partition-guid={part.number}:{guid}",
        ]
        start += part.size_mib
    _run([*args, str(path)])
    contents: dict[str, Tree] = {
        "boot": {
            f"loader/entries/labctl-stand-in-{RELEASE}.conf": (bls_entry(version).encode(), 0o644),
            "grub2/grub.cfg": (grub_cfg().encode(), 0o644),
            "vmlinuz": (kernel.read_bytes(), 0o644),
            "initramfs.img": (initramfs(version), 0o644),
        },
        "root": root_tree(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        mbr, core = grub_images(Path(tmp), offsets["BIOS-BOOT"] // SECTOR)
        with path.open("r+b") as out:
            out.write(mbr)  # the protective MBR's partition table after byte 440 stays
            out.seek(offsets["BIOS-BOOT"])
            out.write(core)
        for part in PARTITIONS:
            if part.label is None:
                continue
            if part.fs == "vfat":
                fs = efi_system_partition(Path(tmp), part)
            else:
                fs = _file_system(Path(tmp), part, contents[part.name])
            for owned, (uid, gid) in OWNERS.get(part.name, {}).items():
                for field, value in (("uid", uid), ("gid", gid)):
                    _run(["debugfs", "-w", "-R", f"set_inode_field {owned} {field} {value}",
                          str(fs)])  # fmt: skip
            with fs.open("rb") as src, path.open("r+b") as out:
                out.seek(offsets[part.name])
                shutil.copyfileobj(src, out, MIB)


def partition_offset(name: str) -> int:
    """Where partition ``name`` starts in the image, in bytes."""
    part = next(p for p in PARTITIONS if p.name == name)
    return (FIRST_MIB + sum(p.size_mib for p in PARTITIONS if p.number < part.number)) * MIB


def plant(disk: Path, files: dict[str, tuple[Path, int]], folders: tuple[str, ...] = ()) -> None:
    """Write ``files`` (path on root: (source, mode)) and ``folders`` into the root file
    system of the image (or disk) at ``disk``, with debugfs at its offset: no mount."""
    target = f"{disk}?offset={partition_offset('root')}"
    commands = [f"mkdir {folder}" for folder in folders]
    for path, (source, mode) in files.items():
        commands += [f"write {source} {path}", f"set_inode_field {path} mode 0{0o100000 | mode:o}"]
    for command in commands:
        done = subprocess.run(
            ["debugfs", "-w", "-R", command, target], capture_output=True, text=True, check=False
        )
        # debugfs exits 0 on a failed request; anything past its banner line is the error.
        said = [line for line in done.stderr.splitlines() if not line.startswith("debugfs 1.")]
        if done.returncode != 0 or said:
            raise LabctlError(f"debugfs {command!r} on {disk}: {' '.join(said)}")


# What each distribution's stand-in says it is: the release its stand-in mirror names
# (installer.FLATCAR_RELEASE in version.txt, installer.FCOS_RELEASE in the stream).
DISTRIBUTIONS = {
    "flatcar": ("Flatcar Container Linux", installer.FLATCAR_RELEASE),
    "fedora-coreos": ("Fedora CoreOS", installer.FCOS_RELEASE),
}


def distribution_os_release(distribution: str) -> str:
    """``/etc/os-release`` of the image standing in for ``distribution``: its ``ID`` is
    the distribution's (what the os survey checks), its name says it is a stand-in."""
    if distribution not in DISTRIBUTIONS:
        raise LabctlError(
            f"no stand-in OS image for {distribution!r}; there is one for "
            f"{', '.join(DISTRIBUTIONS)}"
        )
    name, release = DISTRIBUTIONS[distribution]
    return "\n".join(
        [
            f'NAME="labctl stand-in for {name}"',
            f"ID={distribution}",
            "VARIANT_ID=labctl-stand-in",
            f"VERSION_ID={release}",
            f'PRETTY_NAME="labctl stand-in for {name} {release} (laid out as Fedora CoreOS)"',
            "",
        ]
    )


def build_for(distribution: str, cache: Path = CACHE) -> Path:
    """The stand-in image for ``distribution`` (built unless cached): the image of
    ``build`` with its root's ``/etc/os-release`` naming that distribution."""
    text = distribution_os_release(distribution)
    base = build(cache)
    folder = base.parent / distribution
    image = folder / IMAGE_NAME
    if image.exists():
        return image
    work = base.parent / f".{distribution}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    shutil.copyfile(base, work / IMAGE_NAME)
    (work / "os-release").write_text(text)
    remove = subprocess.run(
        ["debugfs", "-w", "-R", "rm /etc/os-release",
         f"{work / IMAGE_NAME}?offset={partition_offset('root')}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if remove.returncode != 0:
        raise LabctlError(f"debugfs rm /etc/os-release on {work / IMAGE_NAME}: {remove.stderr}")
    plant(work / IMAGE_NAME, {"/etc/os-release": (work / "os-release", 0o644)})
    (work / "os-release").unlink()
    shutil.rmtree(folder, ignore_errors=True)
    work.rename(folder)
    return image


# UEFI firmware (Debian's ovmf): its code, and the variable store each VM gets a copy of.
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")


def uefi_args(variables: Path) -> list[str]:
    """OVMF with the variable store at ``variables`` (copied from OVMF's empty one when
    missing): a machine whose firmware has no boot entry for the disk yet."""
    if not variables.exists():
        shutil.copyfile(OVMF_VARS, variables)
    return [
        "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,file={variables}",
    ]  # fmt: skip


def boot_argv(
    disk: Path, port: int, mac: str, console: Path, pidfile: Path, uefi: Path | None = None
) -> list[str]:
    """qemu booting ``disk`` alone (tcg), its sshd forwarded to loopback ``port``: how
    the image is booted on its own, by its test and its benchmark. SeaBIOS, or OVMF
    with ``uefi`` its variable store."""
    return [
        "qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", "512", "-smp", "1",
        "-display", "none", "-vga", "none", "-no-reboot", "-monitor", "none",
        "-serial", f"file:{console}", "-boot", "strict=on",
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", f"virtio-net-pci,netdev=n0,mac={mac}",
        "-device", "virtio-scsi-pci,id=scsi0",
        "-drive", f"file={disk},if=none,id=d0,format=raw",
        "-device", "scsi-hd,drive=d0,bus=scsi0.0,bootindex=1",
        *(uefi_args(uefi) if uefi else []), "-pidfile", str(pidfile), "-daemonize",
    ]  # fmt: skip


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
