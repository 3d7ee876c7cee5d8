"""A simulated BMC: OpenIPMI's ipmi_sim serving IPMI 2.0 for one server.

Used by the simulated lab (one per server, inside the lab's namespaces) and by
the IPMI driver's tests (on loopback). Power and boot-device requests go to
``labctl.sim.chassis`` through ipmi_sim's ``chassis_control`` hook, which runs
the caller's power-on / power-off commands, so powering off really stops what
the BMC is attached to. Reads (power state, boot device) are answered by
``chassis.sh`` alone, without starting Python.

A BMC whose server is a VM (``sim/vm.py``) also has the host side of a real
BMC: ipmi_sim's system interface (channel 15, its ``VM`` codec) listens on a
TCP port where qemu's ``ipmi-bmc-extern`` connects, so the guest's KCS
interface (``/dev/ipmi0``) talks to this same BMC. ipmi_sim prefers
``chassis_control`` over that link for power, so power and boot device still
go through the chassis program, as a real BMC's would not go through the OS.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from labctl.errors import LabctlError
from labctl.programs import require
from labctl.sim import chassis
from labctl.sim.process import ManagedProcess

IPMI_SIM = "ipmi_sim"
CHASSIS_SCRIPT = Path(__file__).with_name("chassis.sh")


@dataclass(frozen=True)
class BmcSpec:
    name: str
    address: str
    username: str
    password: str = field(repr=False)
    state_dir: Path
    port: int = 623
    power_on: tuple[str, ...] = ()
    power_off: tuple[str, ...] = ()
    # Powered on = this file names a live process; None: the BMC remembers what it set.
    status_pidfile: Path | None = None
    initially_on: bool = False
    # Another chassis_control program (benchmarks use a shell one to take the
    # simulator's own CPU out of the figures); default: chassis.sh.
    chassis_program: str | None = None
    # The VM's system interface: ipmi_sim listens here (loopback of the namespace it
    # runs in) for qemu's ipmi-bmc-extern; None: no VM attached.
    vm_port: int | None = None


def _quote(value: str) -> str:
    if any(c in value for c in '"\n'):
        raise LabctlError(f"simulated BMC: {value!r} cannot go in an ipmi_sim config")
    return f'"{value}"'


def chassis_command(spec: BmcSpec) -> str:
    if spec.chassis_program:
        return f"{spec.chassis_program} {spec.state_dir}"
    paths = (str(spec.state_dir), sys.executable, str(CHASSIS_SCRIPT))
    if any(c.isspace() for path in paths for c in path):
        raise LabctlError(f"simulated BMC state dir {spec.state_dir} must not contain spaces")
    return f"/bin/sh {CHASSIS_SCRIPT} {spec.state_dir} {sys.executable}"


def render_lan_conf(spec: BmcSpec) -> str:
    """ipmi_sim's lan.conf for one BMC (contains the password: write it 0600)."""
    return "\n".join(
        [
            f"name {_quote(spec.name)}",
            "set_working_mc 0x20",
            "  startlan 1",
            f"    addr {spec.address} {spec.port}",
            "    priv_limit admin",
            "    allowed_auths_callback md5",
            "    allowed_auths_user md5",
            "    allowed_auths_operator md5",
            "    allowed_auths_admin md5",
            "    guid a123456789abcdefa123456789abcdef",
            "  endlan",
            *([f"  serial 15 127.0.0.1 {spec.vm_port} codec VM"] if spec.vm_port else []),
            f"  chassis_control {_quote(chassis_command(spec))}",
            f"  user 2 true {_quote(spec.username)} {_quote(spec.password)} admin 10 md5",
            "",
        ]
    )


def render_emu() -> str:
    """The emulator commands: one enabled BMC at IPMB address 0x20."""
    return "\n".join(
        [
            "mc_setbmc 0x20",
            "mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr",
            "mc_enable 0x20",
            "",
        ]
    )


@dataclass
class BmcHandle(ManagedProcess):
    spec: BmcSpec | None = None


def prepare(spec: BmcSpec) -> tuple[Path, Path]:
    """Write the BMC's config, emu file and hooks into its state dir."""
    spec.state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(spec.state_dir, 0o700)
    conf = spec.state_dir / "lan.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(render_lan_conf(spec))
    emu = spec.state_dir / "bmc.emu"
    emu.write_text(render_emu())
    chassis.prepare(
        spec.state_dir, spec.power_on, spec.power_off, spec.status_pidfile, spec.initially_on
    )
    (spec.state_dir / "ipmi_sim").mkdir(exist_ok=True)
    return conf, emu


def start(spec: BmcSpec, netns: str | None = None, wait: float = 5.0) -> BmcHandle:
    """Start ipmi_sim for ``spec`` (optionally inside network namespace ``netns``)."""
    require(IPMI_SIM, "it simulates the BMCs")
    conf, emu = prepare(spec)
    argv: list[str] = [
        IPMI_SIM,
        "-c",
        str(conf),
        "-f",
        str(emu),
        "-s",
        str(spec.state_dir / "ipmi_sim"),
        "-n",
        "-p",  # no persistence: the inventory is the truth, every start
    ]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    log = (spec.state_dir / "ipmi_sim.log").open("ab")
    env = {**os.environ, "PYTHONPATH": _labctl_root()}
    # How to start this BMC again (the simulated lab does when power returns).
    launch = spec.state_dir / "argv.json"
    launch.write_text(json.dumps({"argv": argv, "env": env}))
    launch.chmod(0o600)
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True
    )
    handle = BmcHandle(process.pid, process, spec)
    if netns is None:
        _wait_listening(handle, spec, wait)
    return handle


def _labctl_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def _wait_listening(handle: BmcHandle, spec: BmcSpec, wait: float) -> None:
    """ipmi_sim opens its UDP port at once; wait until it answers an RMCP ping."""
    ping = bytes.fromhex("0600ff06000011be80000000")  # ASF presence ping
    deadline = time.monotonic() + wait
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.1)
        while time.monotonic() < deadline:
            if handle.process is not None and handle.process.poll() is not None:
                log = (spec.state_dir / "ipmi_sim.log").read_text(errors="replace")[-500:]
                raise LabctlError(f"ipmi_sim for {spec.name} exited: {log}")
            try:
                sock.sendto(ping, (spec.address, spec.port))
                sock.recv(64)
                return
            except OSError:
                time.sleep(0.05)
    handle.stop()
    raise LabctlError(f"ipmi_sim for {spec.name} did not answer on {spec.address}:{spec.port}")


def stop_all(handles: Sequence[BmcHandle]) -> None:
    for handle in handles:
        handle.stop()
