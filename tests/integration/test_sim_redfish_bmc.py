"""The simulated lab's Redfish BMC on loopback: sushy-tools' emulator whose power is real.

``labctl.sim.redfish_bmc`` starts the real sushy-tools emulator with
``redfish_system.ChassisDriver`` over HTTPS (a certificate from the lab's BMC CA),
its chassis hooks starting and stopping a real process here, as the simulated lab's
hooks start and stop a node. labctl's Redfish driver then powers it off and on:
the process really stops and starts again, and the boot device set is the one in
the chassis file the node boots from. (The lab itself: tests/e2e/test_bmc_redfish_lab.py.)
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labctl.drivers.ipmi import BootDevice, PowerAction, PowerState
from labctl.drivers.redfish import RedfishClient, RedfishEndpoint
from labctl.errors import AuthenticationError, InsecureProtocolError
from labctl.sim import redfish_bmc
from labctl.sim.process import ManagedProcess
from tests.integration.test_redfish_bmc import _free_port

pytestmark = pytest.mark.integration
ADDRESS = "127.31.0.23"
PASSWORD = "sim-redfish-pw"


@dataclass
class Bmc:
    spec: redfish_bmc.RedfishBmcSpec
    ca: Path
    pidfile: Path

    def client(self, password: str = PASSWORD, verify: bool | str | None = None) -> RedfishClient:
        return RedfishClient(
            RedfishEndpoint(
                host=ADDRESS,
                port=self.spec.port,
                username="labctl",
                password=password,
                verify=str(self.ca) if verify is None else verify,
                timeout=10.0,
                name="wind",
            )
        )

    def node(self) -> int | None:
        """The pid of the process the chassis powers, if it runs."""
        if not self.pidfile.exists():
            return None
        pid = int(self.pidfile.read_text())
        return pid if ManagedProcess(pid).running() else None


@pytest.fixture
def bmc(tmp_path: Path) -> Iterator[Bmc]:
    pidfile = tmp_path / "node.pid"
    # The "node": a process started and killed by the hooks, as sim/node.py does a node.
    on = ("sh", "-c", f"sleep 600 </dev/null >/dev/null 2>&1 & echo $! >{pidfile}")
    off = ("sh", "-c", f"kill $(cat {pidfile}) && rm {pidfile}")
    spec = redfish_bmc.RedfishBmcSpec(
        name="wind",
        address=ADDRESS,
        port=_free_port(ADDRESS),
        scheme="https",
        username="labctl",
        password=PASSWORD,
        state_dir=tmp_path / "bmcs" / "wind",
        power_on=on,
        power_off=off,
        status_pidfile=pidfile,
    )
    handle = redfish_bmc.start(tmp_path, spec)
    the_bmc = Bmc(spec, tmp_path / redfish_bmc.CA_CERT, pidfile)
    try:
        redfish_bmc.wait_answering(handle, spec)
        yield the_bmc
    finally:
        handle.stop()
        if (pid := the_bmc.node()) is not None:
            os.kill(pid, signal.SIGTERM)


def test_redfish_power_really_stops_and_starts_what_the_chassis_powers(bmc: Bmc) -> None:
    client = bmc.client()
    try:
        assert client.power_state() is PowerState.OFF and bmc.node() is None
        client.power(PowerAction.ON)
        first = bmc.node()
        assert first is not None, "power on through Redfish started nothing"
        assert client.power_state() is PowerState.ON
        # The emulator lists no PowerCycle: labctl's cycle is ForceRestart, off then on.
        client.power(PowerAction.CYCLE)
        second = bmc.node()
        assert second is not None and second != first
        assert not ManagedProcess(first).running()
        client.power(PowerAction.OFF)
        assert bmc.node() is None and not ManagedProcess(second).running()
        assert client.power_state() is PowerState.OFF
        # The boot device is the chassis's, the file the simulated node boots from.
        client.set_boot_device(BootDevice.PXE)
        assert (bmc.spec.state_dir / "bootdev").read_text().strip() == "pxe"
        assert client.boot_device()[0] is BootDevice.PXE
        # The system is the server: a UUID made from its name, the same at every start.
        assert client.identity().uuid == str(uuid.uuid5(uuid.NAMESPACE_DNS, "wind.labctl-sim"))
    finally:
        client.close()


def test_the_bmc_checks_the_password_and_serves_the_lab_ca_certificate(bmc: Bmc) -> None:
    with pytest.raises(AuthenticationError):
        bmc.client(password="wrong").power_state()
    # No password in the BMC's files: the htpasswd holds its bcrypt hash.
    files = [p for p in bmc.spec.state_dir.rglob("*") if p.is_file()]
    assert not [p for p in files if PASSWORD.encode() in p.read_bytes()]
    # The certificate is the lab CA's: trusted with it, refused with the system's CAs.
    with pytest.raises(InsecureProtocolError, match="not trusted"):
        bmc.client(verify=True).power_state()
