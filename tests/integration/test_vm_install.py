"""A UEFI network install in qemu against the boot service, without the simulated lab.

The end-to-end test installs a VM node under SeaBIOS through its BMC; this one
boots the same stand-in installer under UEFI (OVMF): the firmware's DHCP says
client architecture 7, dnsmasq tags it ``efi``, iPXE fetches the EFI kernel with
its named initrd, and the real Ignition writes the disk. About 35 s under tcg.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from labctl.boot import service
from labctl.boot.state import BootDirs, read_report
from labctl.sim import vm
from tests.peers.bootnet import bridge_with_tap, standin_inventory

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces, dnsmasq, taps"),
]

FOHN_MAC = "9c:8e:99:1a:2b:01"


def test_uefi_network_install_writes_the_disk(tmp_path: Path) -> None:
    inventory_path, inventory = standin_inventory(tmp_path)
    state = tmp_path / ".labctl"
    disk = tmp_path / "disk.img"
    with disk.open("wb") as handle:
        handle.truncate(vm.DISK_SIZE)
    config = {"tap": "tap0", "mac": FOHN_MAC, "disk": str(disk), "firmware": "uefi"}
    with bridge_with_tap() as ns:
        service.start(inventory, inventory_path, state, netns=ns)
        try:
            argv = ["ip", "netns", "exec", ns, *vm.qemu_argv(config, tmp_path, pxe=True)]
            subprocess.run(argv, check=True, capture_output=True, timeout=60)
            qemu = int((tmp_path / "qemu.pid").read_text())
            deadline = time.monotonic() + 300
            while Path(f"/proc/{qemu}").exists() and time.monotonic() < deadline:
                time.sleep(1)
            assert not Path(f"/proc/{qemu}").exists(), "the installer did not power off"
        finally:
            service.stop(state)
    report = read_report(BootDirs.of(state), "fohn")
    assert report is not None and report.ok, report
    dhcp = BootDirs.of(state).dnsmasq_log.read_text()
    assert "tags: known, ipxe, efi" in dhcp  # UEFI firmware, iPXE inside it
    hostname = subprocess.run(
        ["debugfs", "-R", "cat /etc/hostname", str(disk)], capture_output=True, text=True
    )
    assert hostname.stdout == "fohn\n"
