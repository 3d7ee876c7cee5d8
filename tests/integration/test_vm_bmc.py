"""qemu attached to its simulated BMC: RMCP+ outside, KCS inside, one ipmi_sim.

A VM node's board is wired as a real server's is. Over RMCP+ (ipmitool, lanplus)
the test sets the boot device to pxe and powers the server on; ipmi_sim's
``chassis_control`` starts qemu (``labctl.sim.vm``), and qemu's
``ipmi-bmc-extern`` connects to ipmi_sim's system-interface port, so while the
VM runs the BMC holds that connection (its own socket, seen with ``ss``) and
answers RMCP+ as before. Inside, the stand-in installer's kernel finds the BMC on
its KCS interface and logs the device id ipmi_sim's emulator gives (manufacturer
0x1291, product 0x0f02: no other BMC on this machine says that), ``/dev/ipmi0``
exists, and ipmitool in the guest reads the chassis power through it (in-band).
The install itself (DHCP, iPXE, Ignition, report) runs against the boot service;
the installer powers off, the BMC reads power off, and the one-shot pxe boot
device has fallen back to disk. About 40 s under tcg.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labctl.boot import service
from labctl.boot.state import BootDirs, read_report
from labctl.sim import bmc as sim_bmc
from labctl.sim import osimage, vm
from tests.peers.bootnet import bridge_with_tap, standin_inventory

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces, dnsmasq, taps"),
]

FOHN_MAC = "9c:8e:99:1a:2b:01"
USER, PASSWORD = "admin", "vm-bmc-test"
EMULATED_BMC = "Found new BMC (man_id: 0x001291, prod_id: 0x0f02"  # bmc.render_emu's mc_add


def ipmitool(ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = ["ip", "netns", "exec", ns, "ipmitool", "-I", "lanplus", "-H", "127.0.0.1"]
    argv += ["-U", USER, "-P", PASSWORD, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def connected_to_bmc(ns: str, port: int) -> list[str]:
    """The processes on each end of the BMC's system-interface port, as ss names them."""
    done = subprocess.run(
        ["ip", "netns", "exec", ns, "ss", "-Htnp", "state", "established",
         f"( sport = :{port} or dport = :{port} )"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [line.split("users:")[-1] for line in done.stdout.splitlines()]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_vm_powered_through_rmcp_finds_the_same_bmc_on_its_kcs(tmp_path: Path) -> None:
    inventory_path, inventory = standin_inventory(tmp_path)
    state = tmp_path / "sim"
    boot_state = tmp_path / ".labctl"
    vm_dir = vm.vm_dir(state, "fohn")
    vm_dir.mkdir(parents=True)
    disk = vm_dir / "disk.img"
    with disk.open("wb") as handle:
        handle.truncate(vm.DISK_SIZE)
    port = vm.ipmi_port(inventory, "fohn")
    bmc_dir = state / "bmcs" / "fohn"
    with bridge_with_tap("labosbmc") as ns:
        config = {
            "fabric": ns, "tap": "tap0", "mac": FOHN_MAC, "disk": str(disk), "peers": [],
            "bootdev": str(bmc_dir / "bootdev"), "ipmi_port": port,
            "image": str(osimage.build_for("flatcar")),  # what the installer lays
        }  # fmt: skip
        (vm_dir / "vm.json").write_text(json.dumps(config))
        hook = [sys.executable, "-m", "labctl.sim.vm"]
        spec = sim_bmc.BmcSpec(
            name="fohn", address="127.0.0.1", username=USER, password=PASSWORD,
            state_dir=bmc_dir, power_on=(*hook, "start", "fohn", str(state)),
            power_off=(*hook, "stop", "fohn", str(state)),
            status_pidfile=vm_dir / "power.pid", vm_port=port,
        )  # fmt: skip
        bmc = sim_bmc.start(spec, netns=ns)
        service.start(inventory, inventory_path, boot_state, netns=ns)
        try:
            deadline = time.monotonic() + 10
            while ipmitool(ns, "chassis", "power", "status").returncode != 0:
                assert time.monotonic() < deadline, "ipmi_sim does not answer RMCP+"
                time.sleep(0.2)
            assert ipmitool(ns, "chassis", "power", "status").stdout.strip().endswith("off")
            assert connected_to_bmc(ns, port) == []  # no board powered, nobody on the port

            pxe = ipmitool(ns, "chassis", "bootdev", "pxe")
            assert pxe.returncode == 0, pxe.stderr
            on = ipmitool(ns, "chassis", "power", "on")
            assert on.returncode == 0, on.stderr
            qemu = int((vm_dir / "qemu.pid").read_text())

            # While the VM runs: the BMC holds qemu's connection and still answers RMCP+.
            deadline = time.monotonic() + 20
            while len(ends := connected_to_bmc(ns, port)) < 2:
                assert time.monotonic() < deadline, "qemu never connected to its BMC"
                time.sleep(0.2)
            assert any('"ipmi_sim"' in end for end in ends), ends
            assert any('"qemu-system-x86"' in end for end in ends), ends
            assert ipmitool(ns, "chassis", "power", "status").stdout.strip().endswith("on")
            info = ipmitool(ns, "mc", "info")
            assert "Manufacturer ID           : 4753" in info.stdout, info.stdout + info.stderr

            deadline = time.monotonic() + 300
            while alive(qemu) and time.monotonic() < deadline:
                time.sleep(1)
            assert not alive(qemu), "the installer did not power off"
            assert ipmitool(ns, "chassis", "power", "status").stdout.strip().endswith("off")
            boot = ipmitool(ns, "chassis", "bootparam", "get", "5")
            assert "Force Boot from default Hard-Drive" in boot.stdout, boot.stdout
        finally:
            service.stop(boot_state)
            bmc.stop()
            vm.stop(state, "fohn")
        console = (vm_dir / "console.log").read_text(errors="replace")
        assert f"LABCTL-INSTALLER: ipmi /dev/ipmi0: {EMULATED_BMC}" in console, console[-3000:]
        # In-band too: ipmitool in the guest asked over /dev/ipmi0, and the BMC answered
        # from the same chassis program RMCP+ reads.
        assert "LABCTL-INSTALLER: ipmi in-band: Chassis Power is on" in console
    report = read_report(BootDirs.of(boot_state), "fohn")
    assert report is not None and report.ok, report
    # pxe was for one boot: the BMC's chassis program put disk back once the VM booted.
    assert (bmc_dir / "bootdev").read_text().strip() == "disk"
    chassis = (bmc_dir / "chassis.log").read_text()
    assert "set boot pxe" in chassis and "set power 1" in chassis
