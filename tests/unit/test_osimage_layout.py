"""The stand-in OS image is laid out to boot: GRUB in the MBR and BIOS-BOOT, GRUB's EFI
image on a FAT ``EFI-SYSTEM``, a kernel, an initramfs and GRUB's config on ``boot``, an
init and sshd on ``root``.

Built once into (or read from) the image cache, as the VM nodes use it; the GPT is read
here from its bytes (UEFI's layout), the file systems with debugfs at each partition's
offset (mtools for the FAT one), never by mounting. That the image really boots under
SeaBIOS and OVMF and serves SSH with a planted host key is
tests/integration/test_osimage_boot.py.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from labctl.sim import osimage

SECTOR = 512


@pytest.fixture(scope="module")
def image() -> bytes:
    return osimage.build().read_bytes()


def gpt(image: bytes) -> dict[str, tuple[int, int]]:
    """GPT name -> (first sector, last sector), from the primary header at LBA 1."""
    header = image[SECTOR : 2 * SECTOR]
    assert header[:8] == b"EFI PART"
    entries_lba, count, size = struct.unpack_from("<QII", header, 72)
    found = {}
    for i in range(count):
        at = entries_lba * SECTOR + i * size
        entry = image[at : at + size]
        if entry[:16] == bytes(16):
            continue
        first, last = struct.unpack_from("<QQ", entry, 32)
        found[entry[56:128].decode("utf-16-le").rstrip("\0")] = (first, last)
    return found


def listing(image_path: Path, part: str, folder: str) -> str:
    with image_path.open("rb") as f:
        first, _ = gpt(f.read(34 * SECTOR))[part]
    done = subprocess.run(
        ["debugfs", "-R", f"ls -p {folder}", f"{image_path}?offset={first * SECTOR}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_the_partitions_have_fedora_coreos_names_in_its_order(image: bytes) -> None:
    assert list(gpt(image)) == ["BIOS-BOOT", "EFI-SYSTEM", "boot", "root"]


def test_grub_boot_code_in_the_mbr_reads_core_img_from_bios_boot(image: bytes) -> None:
    boot_img = (osimage.GRUB_DIR / "boot.img").read_bytes()
    mbr = image[:SECTOR]
    first, last = gpt(image)["BIOS-BOOT"]
    # boot.img's code, pointed at core.img's first sector (the rest is the same code).
    assert struct.unpack_from("<Q", mbr, osimage.BOOT_KERNEL_SECTOR)[0] == first
    assert mbr[: osimage.BOOT_KERNEL_SECTOR] == boot_img[: osimage.BOOT_KERNEL_SECTOR]
    assert mbr[0x68 : osimage.MBR_CODE] == boot_img[0x68 : osimage.MBR_CODE]
    # The protective MBR stays: one partition of type 0xEE, and the boot signature.
    assert mbr[446 + 4] == 0xEE and mbr[510:] == b"\x55\xaa"
    # core.img's first sector (diskboot.img) loads the rest in one run after itself.
    core = image[first * SECTOR : (last + 1) * SECTOR]
    diskboot = (osimage.GRUB_DIR / "diskboot.img").read_bytes()
    assert core[:0x100] == diskboot[:0x100]
    start, count, segment = struct.unpack_from("<QHH", core, osimage.BLOCKLIST)
    assert (start, segment) == (first + 1, 0x820)
    assert 0 < count < last - first
    assert core[(count + 1) * SECTOR :].strip(b"\0") == b""  # nothing cut off after it


def test_efi_system_is_fat_with_grub_s_efi_image_at_the_removable_media_path(
    image: bytes, tmp_path: Path
) -> None:
    first, _ = gpt(image)["EFI-SYSTEM"]
    boot_sector = image[first * SECTOR : (first + 1) * SECTOR]
    assert boot_sector[0x2B:0x36] == b"EFI-SYSTEM " and boot_sector[0x36:0x3E] == b"FAT12   "
    assert boot_sector[510:] == b"\x55\xaa"
    loader = tmp_path / "BOOTX64.EFI"
    subprocess.run(
        ["mcopy", "-i", f"{osimage.build()}@@{first * SECTOR}", "::EFI/BOOT/BOOTX64.EFI",
         str(loader)],
        check=True, env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    pe = loader.read_bytes()
    assert pe[:2] == b"MZ"  # a PE image, as firmware starts
    (at,) = struct.unpack_from("<I", pe, 0x3C)
    assert pe[at : at + 6] == b"PE\0\0\x64\x86"  # for x86-64
    # GRUB's, with the embedded config that finds ``boot`` as core.img's does.
    assert osimage.GRUB_EMBEDDED.encode() in pe


def test_boot_holds_grub_cfg_the_kernel_and_the_initramfs() -> None:
    path = osimage.build()
    names = listing(path, "boot", "/")
    for name in ("vmlinuz", "initramfs.img", "grub2", "loader"):
        assert f"/{name}/" in names, names
    assert "/grub.cfg/" in listing(path, "boot", "/grub2")
    cfg = osimage.grub_cfg()
    assert "linux /vmlinuz root=LABEL=root" in cfg and "initrd /initramfs.img" in cfg


def test_root_holds_an_init_sshd_and_the_os_release() -> None:
    path = osimage.build()
    assert "/init/" in listing(path, "root", "/sbin")
    assert "/sshd/" in listing(path, "root", "/usr/sbin")
    assert "/busybox/" in listing(path, "root", "/bin")
    assert "/sshd_config/" in listing(path, "root", "/etc/ssh")
