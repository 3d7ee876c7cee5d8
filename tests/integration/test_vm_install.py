"""A UEFI network install in qemu against the boot service, without the simulated lab.

The end-to-end test installs a VM node under SeaBIOS through its BMC; this one
boots the same stand-in installer under UEFI (OVMF): the firmware's DHCP says
client architecture 7, dnsmasq tags it ``efi``, iPXE fetches the EFI kernel with
its named initrd, and the real Ignition writes the disk. About 35 s under tcg.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from labctl.boot import service
from labctl.boot.state import BootDirs, read_report
from labctl.inventory import require_inventory
from labctl.sim import installer, vm
from tests.conftest import REFERENCE
from tests.labctl_process import run_labctl
from tests.peers.bootnet import HOST_LOCK

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces, dnsmasq, taps"),
]

BOOT = "31.31.164.218"
FOHN_MAC = "9c:8e:99:1a:2b:01"


@contextmanager
def bridge_with_tap() -> Iterator[str]:
    """A namespace with a bridge holding the boot address and a tap for qemu."""
    HOST_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with HOST_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ns = f"labosvm{os.getpid()}"
        steps = [
            ["netns", "add", ns],
            ["-n", ns, "link", "set", "lo", "up"],
            ["-n", ns, "link", "add", "br0", "type", "bridge"],
            ["-n", ns, "addr", "add", f"{BOOT}/28", "dev", "br0"],
            ["-n", ns, "link", "set", "br0", "up"],
            ["-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap"],
            ["-n", ns, "link", "set", "tap0", "master", "br0", "up"],
        ]
        try:
            for step in steps:
                subprocess.run(["ip", *step], check=True, capture_output=True)
            yield ns
        finally:
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            for pid in pids.stdout.split():
                subprocess.run(["kill", "-9", pid], check=False)
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def test_uefi_network_install_writes_the_disk(tmp_path: Path) -> None:
    mirror = installer.build()
    inventory_path = tmp_path / "inventory.yaml"
    inventory_path.write_text(
        REFERENCE.read_text().replace(
            "    dhcp: full\n", f"    dhcp: full\n    mirror: file://{mirror}\n"
        )
    )
    fetched = run_labctl("boot", "fetch", "-i", str(inventory_path), cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    inventory = require_inventory(inventory_path)
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
