"""VM nodes: a simulated server whose network install really boots (qemu under tcg).

Opt-in per server (``labctl sim up --vm NAME``, or ``--vm NAME:uefi`` for
UEFI firmware, OVMF, where SeaBIOS is the default); every other server stays a
namespace node. The server's BMC keeps answering RMCP+ as before, but its power
hooks come here: powered on with boot device ``pxe`` it starts qemu (software
emulation; KVM does not work on this machine kind) with the PXE NIC on a tap in
the server's lab bridge, with the inventory's MAC, first in the boot order, a
virtio-scsi disk (``/dev/sda``, as the inventory's OS disk) and, read-only on
virtio-blk (``/dev/vda``), the stand-in OS image for the server's distribution
(``osimage.build_for``). The firmware's iPXE asks DHCP, TFTP and HTTP, the
stand-in installer (``installer.py``) lays the image on the disk with the real
coreos-installer, applies the Ignition config coreos-installer wrote into the
``boot`` partition to ``root`` with the real Ignition, reports and powers off,
which ends qemu: the BMC reads power off. The image is a second disk rather than
a download from the boot service: under tcg the guest's virtio-net moves ~100 MB
far slower than its block device reads it, and the boot service's HTTP path is
already proven by the kernel, initrd and Ignition it serves.

Powered on from ``disk`` after a finished install (the disk's ``root`` holds the
identity file Ignition wrote), qemu boots the disk alone: SeaBIOS, GRUB, the
image's initramfs and its init, which brings the NIC up from the networkd or
NetworkManager file Ignition wrote and runs sshd with the host key Ignition
planted, so the os layer's first SSH and survey meet the installed disk. Under
UEFI firmware (OVMF) the same: OVMF finds no boot entry of its own for the disk
in the VM's variable store and starts the removable-media path of its EFI system
partition, ``EFI/BOOT/BOOTX64.EFI``, GRUB's EFI image (``osimage.py``), which
reads the same ``grub.cfg``. Only the PXE NIC is in the VM; the server's other
NICs stay down while qemu runs. With an empty disk it starts qemu from the disk,
which finds nothing to boot, as a real machine would. The namespace node's links
are down while qemu has the MAC, so the two never answer for the same address.

qemu is attached to its BMC as a real server's board is: ``ipmi-bmc-extern``
with an ``isa-ipmi-kcs`` interface, whose chardev connects to ipmi_sim's
system-interface port (``serial 15 ... codec VM`` in its lan.conf, see
``bmc.py``), so the guest finds a BMC on its KCS and ``/dev/ipmi0`` reaches
the same ipmi_sim that answers RMCP+. Where that port lives follows from the
sim's layout: ipmi_sim runs in the fabric namespace (its address is on the
management bridge there) and qemu runs there too (its tap is on a lab bridge
there), so the link is a TCP port on the fabric namespace's loopback, one per
VM (``IPMI_PORT_BASE`` + the server's index in the inventory, unique in the
lab). Loopback keeps it off every lab network and away from the host, as a
board's internal bus is. qemu connects as a client with ``reconnect=10``, so it
starts even when its BMC is not listening and retries (a BMC restarted by its
PDU's outlets; that case is not tested here).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from labctl.errors import LabctlError
from labctl.inventory.model import Inventory
from labctl.programs import require
from labctl.sim import node as sim_node
from labctl.sim import osimage
from labctl.sim.plan import SimPlan

DISK_SIZE = 1 << 30
MEMORY_MB = 512
IPMI_PORT_BASE = 9100


def ipmi_port(inventory: Inventory, name: str) -> int:
    """The loopback port where ``name``'s BMC listens for its VM (fabric namespace)."""
    return IPMI_PORT_BASE + [s.name for s in inventory.servers].index(name)


def vm_dir(state: Path, name: str) -> Path:
    return state / "vms" / name


def _config(state: Path, name: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((vm_dir(state, name) / "vm.json").read_text())
    return config


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LabctlError(f"ip {' '.join(args)}: {done.stderr.strip()}")


FIRMWARES = ("bios", "uefi")


def parse_choices(choices: tuple[str, ...]) -> dict[str, str]:
    """``--vm`` values (``NAME`` or ``NAME:FIRMWARE``) as {server: firmware}."""
    found: dict[str, str] = {}
    for choice in choices:
        name, _, firmware = choice.partition(":")
        firmware = firmware or "bios"
        if firmware not in FIRMWARES:
            raise LabctlError(
                f"--vm {choice}: firmware {firmware!r} is not one of {', '.join(FIRMWARES)}"
            )
        if name in found and found[name] != firmware:
            raise LabctlError(f"--vm {name} is given twice with different firmware")
        found[name] = firmware
    return found


def setup(
    inventory: Inventory,
    plan: SimPlan,
    state: Path,
    name: str,
    boot_address: str,
    firmware: str = "bios",
) -> None:
    """Make ``name`` a VM node: its disk, its tap, its BMC's hooks; powered off."""
    require("qemu-system-x86_64", "VM nodes")
    if firmware == "uefi" and not (OVMF_CODE.exists() and OVMF_VARS.exists()):
        raise LabctlError(
            f"--vm {name}:uefi needs {OVMF_CODE} and {OVMF_VARS} (Debian package ovmf)"
        )
    server = inventory.server(name)
    nic = next((n for n in server.nics if n.pxe), None)
    if nic is None:
        raise LabctlError(f"{name} has no PXE NIC; a VM node boots from one")
    node = next(n for n in plan.nodes if n.name == name)
    sim_nic = next(n for n in node.nics if n.name == nic.name)
    d = vm_dir(state, name)
    d.mkdir(parents=True, exist_ok=True)
    disk = d / "disk.img"
    with disk.open("wb") as handle:
        handle.truncate(DISK_SIZE)
    index = [s.name for s in inventory.servers].index(name)
    tap = f"vt{plan.lab_id[:8]}{index}"[:15]
    _ip("-n", plan.fabric, "tuntap", "add", "dev", tap, "mode", "tap")
    _ip("-n", plan.fabric, "link", "set", tap, "master", sim_nic.bridge, "up")
    boot_cidr = f"{boot_address}/{sim_bridge_prefix(plan, sim_nic.bridge)}"
    subprocess.run(
        ["ip", "-n", plan.fabric, "addr", "add", boot_cidr, "dev", sim_nic.bridge],
        capture_output=True,
        check=False,  # a second VM node on the same bridge finds it there
    )
    config = {
        "fabric": plan.fabric,
        "tap": tap,
        "mac": nic.mac,
        "disk": str(disk),
        "peers": [n.peer for n in node.nics],
        "bootdev": str(state / "bmcs" / name / "bootdev"),
        "ipmi_port": ipmi_port(inventory, name),
        "firmware": firmware,
        "image": str(osimage.build_for(server.os.distribution)),
    }
    (d / "vm.json").write_text(json.dumps(config, indent=2))
    # Off, as a new machine is: the namespace node stops, and power now comes here.
    sim_node.stop(state, name)
    base = [sys.executable, "-m", "labctl.sim.vm"]
    bmc = state / "bmcs" / name
    hooks = {"on": [*base, "start", name, str(state)], "off": [*base, "stop", name, str(state)]}
    (bmc / "hooks.json").write_text(json.dumps(hooks))
    (bmc / "status_pidfile").write_text(f"{d / 'power.pid'}\n")
    (bmc / "power").write_text("off\n")


def setup_all(inventory: Inventory, plan: SimPlan, state: Path, choices: dict[str, str]) -> None:
    boot = inventory.lab.boot
    if boot is None:
        raise LabctlError("VM nodes boot from labctl's boot service: the inventory needs lab.boot")
    known = {s.name for s in inventory.servers}
    for name, firmware in choices.items():
        if name not in known:
            raise LabctlError(f"--vm {name}: no such server in the inventory")
        setup(inventory, plan, state, name, boot.address, firmware)


def sim_bridge_prefix(plan: SimPlan, bridge: str) -> str:
    for b in plan.bridges:
        if b.name == bridge:
            return b.address.split("/")[1]
    raise LabctlError(f"no bridge {bridge} in the simulated lab")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _links(config: dict[str, Any], state: str) -> None:
    for peer in config["peers"]:
        subprocess.run(
            ["ip", "-n", config["fabric"], "link", "set", peer, state],
            capture_output=True,
            check=False,
        )


OVMF_CODE = osimage.OVMF_CODE
OVMF_VARS = osimage.OVMF_VARS


def firmware_args(config: dict[str, Any], d: Path) -> list[str]:
    """SeaBIOS (qemu's default) or UEFI (OVMF, with this VM's own variable store)."""
    if config.get("firmware", "bios") != "uefi":
        return []
    return osimage.uefi_args(d / "OVMF_VARS.fd")


def bmc_args(config: dict[str, Any]) -> list[str]:
    """The board's BMC: ipmi_sim over the VM codec, seen by the guest on a KCS interface."""
    port = config.get("ipmi_port")
    if port is None:
        return []
    return [
        "-chardev", f"socket,id=ipmi0,host=127.0.0.1,port={port},reconnect=10",
        "-device", "ipmi-bmc-extern,id=bmc0,chardev=ipmi0",
        "-device", "isa-ipmi-kcs,bmc=bmc0",
    ]  # fmt: skip


def image_args(config: dict[str, Any], pxe: bool) -> list[str]:
    """The OS image the installer lays (``installer.IMAGE_DISK``): a read-only virtio-blk
    disk, on the network install only, never in the boot order."""
    if not pxe or not config.get("image"):
        return []
    return ["-drive", f"file={config['image']},if=virtio,format=raw,readonly=on"]


def qemu_argv(config: dict[str, Any], d: Path, pxe: bool) -> list[str]:
    nic = f"virtio-net-pci,netdev=n0,mac={config['mac']}" + (",bootindex=1" if pxe else "")
    return [
        shutil.which("qemu-system-x86_64") or "qemu-system-x86_64",
        "-accel", "tcg", "-machine", "q35", "-m", str(MEMORY_MB), "-smp", "1",
        "-display", "none", "-vga", "none", "-no-reboot",
        "-serial", f"file:{d / 'console.log'}", "-monitor", "none",
        "-boot", "strict=on", *firmware_args(config, d),
        "-netdev", f"tap,id=n0,ifname={config['tap']},script=no,downscript=no",
        "-device", nic,
        "-device", "virtio-scsi-pci,id=scsi0",
        "-drive", f"file={config['disk']},if=none,id=d0,format=raw",
        "-device", f"scsi-hd,drive=d0,bus=scsi0.0,bootindex={2 if pxe else 1}",
        *image_args(config, pxe), *bmc_args(config),
        "-pidfile", str(d / "qemu.pid"), "-daemonize",
    ]  # fmt: skip


INSTALLER, DISK = "installer", "disk"


def boots(device: str) -> str:
    """What a power-on starts in qemu: the network ``installer`` (boot device pxe) or the
    VM's own ``disk`` (any other), under either firmware: the stand-in image boots under
    SeaBIOS and OVMF alike, and an empty disk boots nothing, as on a real machine."""
    return INSTALLER if device == "pxe" else DISK


def start(state: Path, name: str) -> None:
    d = vm_dir(state, name)
    config = _config(state, name)
    power = d / "power.pid"
    running = _pid(power)
    if running and _alive(running):
        return
    bootdev = Path(config["bootdev"])
    device = bootdev.read_text().strip() if bootdev.exists() else "disk"
    with (d / "chassis.log").open("a") as log:
        log.write(f"{time.strftime('%H:%M:%S')} power on, boot device {device}\n")
    pxe = boots(device) == INSTALLER
    _links(config, "down")
    # The previous boot's console (the installer's, once the disk boots) is kept beside.
    console = d / "console.log"
    if console.exists():
        console.replace(d / "console.log.1")
    argv = ["ip", "netns", "exec", config["fabric"], *qemu_argv(config, d, pxe)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    if done.returncode != 0:
        raise LabctlError(f"{name}: qemu did not start: {done.stderr.strip()}")
    power.write_text(f"{_pid(d / 'qemu.pid')}\n")
    if pxe:
        # A BMC's boot device is for the next boot only (unless made persistent, which
        # the os layer does for disk): the firmware clears it once it has booted.
        bootdev.write_text("disk\n")


def stop(state: Path, name: str) -> None:
    d = vm_dir(state, name)
    for pidfile in (d / "qemu.pid",):
        qemu = _pid(pidfile)
        if qemu and _alive(qemu):
            subprocess.run(["kill", str(qemu)], check=False)
            for _ in range(50):
                if not _alive(qemu):
                    break
                time.sleep(0.1)
        pidfile.unlink(missing_ok=True)
    sim_node.stop(state, name)
    (d / "power.pid").unlink(missing_ok=True)


def processes(state: Path) -> list[int]:
    """Every VM's qemu still running (``labctl sim down`` stops them with the rest)."""
    found = []
    for pidfile in (state / "vms").glob("*/qemu.pid"):
        pid = _pid(pidfile)
        if pid and _alive(pid):
            found.append(pid)
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("start", "stop"):
        print("usage: python -m labctl.sim.vm start|stop NAME STATE_DIR", file=sys.stderr)
        return 2
    command, name, state = argv[0], argv[1], Path(argv[2])
    try:
        (start if command == "start" else stop)(state, name)
    except LabctlError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
