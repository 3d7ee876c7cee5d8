"""What a VM node's install carries and boots: the installer initrd's programs, the
image disk beside the OS disk, and which power-on boots what.

The install itself (coreos-installer laying the image inside the VM, the VM then booting
its own disk) is tests/e2e/test_os_lab.py; these check its pieces without a VM.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from labctl.errors import LabctlError
from labctl.sim import installer, osimage, vm


def _ldd(program: Path) -> list[str]:
    out = subprocess.run(["ldd", str(program)], capture_output=True, text=True, check=True)
    return [part for line in out.stdout.splitlines() for part in line.split() if part[0] == "/"]


def test_the_installer_initrd_carries_coreos_installer_udevd_and_their_libraries() -> None:
    files = installer._files(installer.kernel_inputs())
    assert files["usr/bin/coreos-installer"] == installer.COREOS_INSTALLER
    for program in ("usr/bin/udevadm", "usr/bin/lsblk", "usr/sbin/blkid"):
        assert program in files, program
    for binary in (installer.COREOS_INSTALLER, installer.UDEVADM, Path("/usr/bin/lsblk")):
        for library in _ldd(binary):
            assert library.lstrip("/") in files, (binary, library)
            assert files[library.lstrip("/")] == Path(library).resolve()


def test_systemd_udevd_is_udevadm_and_the_image_disk_is_named_for_init() -> None:
    made = {path: (mode, data) for path, mode, data in installer.made_entries(
        installer.kernel_inputs()
    )}  # fmt: skip
    assert made["lib/systemd/systemd-udevd"] == (0o120777, b"/usr/bin/udevadm")
    assert made[installer.IMAGE_DISK_FILE][1].decode() == f"{installer.IMAGE_DISK}\n"
    init = made["init"][1].decode()
    assert "IMAGE=$(cat /etc/labctl-image-disk)" in init
    assert "/lib/systemd/systemd-udevd" in init
    assert '--image-file "$IMAGE" --insecure' in init


def test_the_image_disk_is_attached_to_the_network_install_only() -> None:
    config = {
        "tap": "vt0", "mac": "9c:8e:99:1a:2b:01", "disk": "/d/disk.img",
        "image": "/c/flatcar/image.raw", "firmware": "bios",
    }  # fmt: skip
    image = ["-drive", "file=/c/flatcar/image.raw,if=virtio,format=raw,readonly=on"]
    install = vm.qemu_argv(config, Path("/d"), pxe=True)
    disk = vm.qemu_argv(config, Path("/d"), pxe=False)
    assert " ".join(image) in " ".join(install)
    assert "file=/c/flatcar/image.raw" not in " ".join(disk)
    assert "scsi-hd,drive=d0,bus=scsi0.0,bootindex=1" in disk  # the disk boots first
    assert "virtio-net-pci,netdev=n0,mac=9c:8e:99:1a:2b:01,bootindex=1" in install


@pytest.mark.parametrize(
    ("device", "boots"),
    [("pxe", vm.INSTALLER), ("disk", vm.DISK), ("bios", vm.DISK), ("none", vm.DISK)],
)
def test_a_power_on_boots_the_installer_from_pxe_and_the_vm_s_own_disk_otherwise(
    device: str, boots: str
) -> None:
    """Under either firmware: the installed disk in qemu (SeaBIOS and OVMF both boot the
    stand-in image), an empty one booting nothing, as a real machine's."""
    assert vm.boots(device) == boots


def test_each_distribution_s_stand_in_names_its_distribution_and_says_it_stands_in() -> None:
    flatcar = osimage.distribution_os_release("flatcar")
    assert "ID=flatcar\n" in flatcar and "VARIANT_ID=labctl-stand-in\n" in flatcar
    assert f"VERSION_ID={installer.FLATCAR_RELEASE}\n" in flatcar  # its mirror's version.txt
    fcos = osimage.distribution_os_release("fedora-coreos")
    assert "ID=fedora-coreos\n" in fcos and f"VERSION_ID={installer.FCOS_RELEASE}\n" in fcos
    with pytest.raises(LabctlError, match="no stand-in OS image for 'rhel'"):
        osimage.distribution_os_release("rhel")


def test_the_distribution_s_image_is_the_stand_in_with_its_os_release(tmp_path: Path) -> None:
    image = osimage.build_for("flatcar", tmp_path)
    base = osimage.build(tmp_path)
    root = f"{image}?offset={osimage.partition_offset('root')}"
    release = subprocess.run(
        ["debugfs", "-R", "cat /etc/os-release", root], capture_output=True, text=True
    )
    assert release.stdout == osimage.distribution_os_release("flatcar")
    assert image.stat().st_size == base.stat().st_size
    assert osimage.build_for("flatcar", tmp_path) == image  # cached
