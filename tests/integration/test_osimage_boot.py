"""The stand-in OS image boots from its own disk and serves SSH with a planted host key.

The cached image (``labctl.sim.osimage``) is copied, and what an install's Ignition
writes onto ``root`` is planted there with debugfs at the partition's offset (no mount:
this host's kernel reads no GPT): the host key at ``/etc/ssh/ssh_host_ed25519_key``,
the ``core`` user's key as Ignition writes it (``.ssh/authorized_keys.d/ignition``) and a
systemd-networkd ``.network`` for the NIC's MAC with the address qemu's user network
gives. qemu (software emulation, the disk as the only boot device) then boots it, once
under SeaBIOS (GRUB from the MBR and BIOS-BOOT) and once under UEFI firmware (OVMF with
an empty variable store: GRUB's EFI image from ``EFI-SYSTEM``'s removable-media path),
then the kernel and initramfs from ``boot``, the init on ``root``. SSH reaches the guest
only through qemu's forward on this host's loopback, pinned to the planted host key,
and reads ``/etc/os-release`` from the booted disk.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.sim import osimage

pytestmark = [pytest.mark.integration]

MAC = "52:54:00:6c:61:62"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(params=["bios", "uefi"])
def booted(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Path, int]]:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.fail("qemu-system-x86_64 is missing: run scripts/setup.sh")
    disk = tmp_path / "disk.raw"
    shutil.copyfile(osimage.build(), disk)
    for name in ("host", "user"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)],
            check=True,
        )
    network = tmp_path / "eth.network"
    network.write_text(f"[Match]\nMACAddress={MAC}\n[Network]\nAddress=10.0.2.15/24\n")
    osimage.plant(
        disk,
        {
            "/etc/ssh/ssh_host_ed25519_key": (tmp_path / "host", 0o600),
            "/home/core/.ssh/authorized_keys.d/ignition": (tmp_path / "user.pub", 0o644),
            "/etc/systemd/network/00-labctl-eth.network": (network, 0o644),
        },
        ("/home/core/.ssh", "/home/core/.ssh/authorized_keys.d"),
    )
    port = free_port()
    console = tmp_path / "console.log"
    pidfile = tmp_path / "qemu.pid"
    uefi = tmp_path / "OVMF_VARS.fd" if request.param == "uefi" else None
    subprocess.run(osimage.boot_argv(disk, port, MAC, console, pidfile, uefi), check=True)
    pid = int(pidfile.read_text())
    try:
        yield tmp_path, port
    finally:
        os.kill(pid, 15)


def test_the_image_boots_its_disk_and_serves_ssh_with_the_planted_host_key(
    booted: tuple[Path, int],
) -> None:
    folder, port = booted
    console = folder / "console.log"
    deadline = time.monotonic() + 300  # software emulation on a shared machine
    text = ""
    while time.monotonic() < deadline and "sshd up" not in text and "powering off" not in text:
        time.sleep(1)
        text = console.read_text(errors="replace") if console.exists() else ""
    assert "LABCTL-OS: sshd up with the host key on the disk" in text, text[-3000:]
    assert "LABCTL-OS: root LABEL=root is /dev/sda4" in text
    # Which firmware booted it: the kernel says whether it was started through EFI.
    assert ("efi: EFI v" in text) == (folder / "OVMF_VARS.fd").exists(), text[:3000]
    assert "eth0 10.0.2.15/24" in text
    known = folder / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {(folder / 'host.pub').read_text()}")
    done = subprocess.run(
        ["ssh", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known}",
         "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=30",
         "-i", str(folder / "user"), "-p", str(port), "core@127.0.0.1",
         "cat /etc/os-release; id -un; sudo -n -- id -un"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"VERSION_ID={osimage.RELEASE}" in done.stdout
    # core, and root through sudo without a password, as labctl's SSH sessions run
    # commands for a login user that is not root (`sudo -n --`).
    assert done.stdout.rstrip().endswith("core\nroot"), done.stdout + done.stderr
