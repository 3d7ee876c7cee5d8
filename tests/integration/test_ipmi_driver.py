"""The IPMI driver against OpenIPMI's ipmi_sim, cross-checked with ipmitool."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.drivers.ipmi import (
    BmcEndpoint,
    BootDevice,
    IpmiClient,
    PowerAction,
    PowerState,
)
from labctl.errors import AuthenticationError, DriverError, DriverTimeout, InsecureProtocolError
from labctl.sim import bmc as sim_bmc
from labctl.sim.process import ManagedProcess
from tests.peers.ports import free_udp_port

pytestmark = pytest.mark.integration
PASSWORD = "s3cret-Pw"


class Bmc:
    def __init__(self, spec: sim_bmc.BmcSpec, pidfile: Path) -> None:
        self.spec = spec
        self.pidfile = pidfile

    def endpoint(self, **changes: object) -> BmcEndpoint:
        base: dict[str, object] = {
            "host": self.spec.address,
            "port": self.spec.port,
            "username": self.spec.username,
            "password": self.spec.password,
            "name": "node1",
            "timeout": 2.0,
        }
        return BmcEndpoint(**{**base, **changes})  # type: ignore[arg-type]

    def ipmitool(self, *args: str) -> str:
        argv = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", self.spec.address]
        argv += ["-p", str(self.spec.port), "-U", self.spec.username, "-P", PASSWORD, *args]
        return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=20).stdout

    def node_pid(self) -> int | None:
        """The pid of the 'node' process the power hooks manage, if it runs."""
        if not self.pidfile.exists():
            return None
        text = self.pidfile.read_text().strip()
        if not text:  # the power-on hook's `echo $! >` has made the file, not written it yet
            return None
        pid = int(text)
        # A killed node may stay a zombie until PID 1 reaps it: that is off, as the BMC says.
        return pid if ManagedProcess(pid).running() else None


@pytest.fixture
def bmc(tmp_path: Path) -> Iterator[Bmc]:
    assert shutil.which("ipmi_sim") and shutil.which("ipmitool"), "install openipmi and ipmitool"
    pidfile = tmp_path / "node.pid"
    spec = sim_bmc.BmcSpec(
        name="node1",
        address="127.0.0.1",
        port=free_udp_port(),
        username="labctl",
        password=PASSWORD,
        state_dir=tmp_path / "bmc",
        # The "node" is a sleep process: powering on starts it, off kills it.
        power_on=("sh", "-c", f"sleep 600 >/dev/null 2>&1 & echo $! > {pidfile}"),
        power_off=("sh", "-c", f"kill $(cat {pidfile}) 2>/dev/null; true"),
        status_pidfile=pidfile,
    )
    handle = sim_bmc.start(spec)
    peer = Bmc(spec, pidfile)
    try:
        yield peer
    finally:
        handle.stop()
        pid = peer.node_pid()
        if pid:
            os.kill(pid, signal.SIGKILL)


def wait_for_power(ipmi: IpmiClient, state: PowerState, deadline_s: float) -> PowerState:
    """The state once it is ``state``, or whatever it is at the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        current = ipmi.power_state()
        if current == state or time.monotonic() >= deadline:
            return current
        time.sleep(0.25)


def test_power_on_and_off_really_start_and_stop_the_node(bmc: Bmc) -> None:
    with IpmiClient(bmc.endpoint()) as ipmi:
        assert ipmi.power_state() is PowerState.OFF
        assert "Chassis Power is off" in bmc.ipmitool("chassis", "power", "status")
        ipmi.power(PowerAction.ON)
        assert wait_for_power(ipmi, PowerState.ON, 5) is PowerState.ON
        assert "Chassis Power is on" in bmc.ipmitool("chassis", "power", "status")
        first = bmc.node_pid()
        assert first is not None
        ipmi.power(PowerAction.RESET)
        assert wait_for_power(ipmi, PowerState.ON, 5) is PowerState.ON
        second = bmc.node_pid()
        assert second is not None and second != first  # reset restarted the node
        ipmi.power(PowerAction.OFF)
        assert wait_for_power(ipmi, PowerState.OFF, 5) is PowerState.OFF
        assert "Chassis Power is off" in bmc.ipmitool("chassis", "power", "status")
        assert bmc.node_pid() is None


def test_cycle_and_soft(bmc: Bmc) -> None:
    with IpmiClient(bmc.endpoint()) as ipmi:
        ipmi.power(PowerAction.ON)
        first = bmc.node_pid()
        ipmi.power(PowerAction.CYCLE)
        deadline = time.monotonic() + 10
        while bmc.node_pid() in (None, first):
            assert time.monotonic() < deadline, "cycle did not restart the node"
            time.sleep(0.1)
        ipmi.power(PowerAction.SOFT)
        assert wait_for_power(ipmi, PowerState.OFF, 5) is PowerState.OFF


def test_boot_device_is_seen_by_ipmitool_and_the_node(bmc: Bmc) -> None:
    with IpmiClient(bmc.endpoint()) as ipmi:
        ipmi.set_boot_device(BootDevice.PXE)
        assert ipmi.boot_device()[0] is BootDevice.PXE
        assert "Force PXE" in bmc.ipmitool("chassis", "bootparam", "get", "5")
        assert (bmc.spec.state_dir / "bootdev").read_text().strip() == "pxe"
        ipmi.set_boot_device(BootDevice.DISK, persistent=True)
        assert ipmi.boot_device()[0] is BootDevice.DISK
        assert (bmc.spec.state_dir / "bootdev").read_text().strip() == "disk"
    bmc.ipmitool("chassis", "bootdev", "pxe")  # and the other way round
    with IpmiClient(bmc.endpoint()) as ipmi:
        assert ipmi.boot_device()[0] is BootDevice.PXE


def test_wrong_password_is_an_authentication_error_without_the_password(bmc: Bmc) -> None:
    with (
        pytest.raises(AuthenticationError) as caught,
        IpmiClient(bmc.endpoint(password="nope-123")),
    ):
        pass
    assert "node1 BMC" in str(caught.value)
    assert "nope-123" not in str(caught.value) and PASSWORD not in str(caught.value)


def test_suites_without_integrity_are_refused_unless_allowed(bmc: Bmc) -> None:
    with pytest.raises(InsecureProtocolError, match="allow_insecure"):
        IpmiClient(bmc.endpoint(cipher_suites=(1,))).connect()
    with pytest.raises(InsecureProtocolError):
        IpmiClient(bmc.endpoint(cipher_suites=(0,), allow_insecure=True)).connect()
    with IpmiClient(bmc.endpoint(cipher_suites=(1,), allow_insecure=True)) as ipmi:
        assert ipmi.power_state() is PowerState.OFF


def test_an_address_nobody_answers_times_out_within_the_bound() -> None:
    # A UDP socket that receives and never answers: packets vanish, as to a dead BMC.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        endpoint = BmcEndpoint("127.0.0.1", "labctl", "x", port=port, timeout=0.5, retries=1)
        start = time.monotonic()
        with pytest.raises(DriverTimeout, match=r"no answer within 0\.5 s"):
            IpmiClient(endpoint).connect()
        elapsed = time.monotonic() - start
    assert elapsed < (endpoint.retries + 1) * endpoint.timeout + 1.0


def test_a_port_nobody_listens_on_is_told_as_such_with_the_raw_error() -> None:
    # The kernel answers a UDP packet to a closed loopback port with "port unreachable".
    port = free_udp_port()
    endpoint = BmcEndpoint("127.0.0.1", "labctl", "x", port=port, timeout=2.0, name="fohn")
    start = time.monotonic()
    with pytest.raises(DriverError) as caught:
        IpmiClient(endpoint).power_state()
    assert time.monotonic() - start < 1.0  # refused at once, not after the timeout
    assert not isinstance(caught.value, DriverTimeout)  # a refusal is not retried as one
    assert str(caught.value) == (
        f"fohn BMC (127.0.0.1:{port}): power status: connection refused by 127.0.0.1:{port}: "
        "the host is there but nothing listens on that port (the BMC's IPMI service is not "
        "running, or the port is wrong)"
    )
    assert caught.value.detail == "[Errno 111] Connection refused"


def test_an_address_the_kernel_will_not_send_to_is_told_as_such() -> None:
    # Loopback's broadcast address: without SO_BROADCAST the kernel refuses to send
    # there (EACCES), as it does for a prohibit route.
    endpoint = BmcEndpoint("127.255.255.255", "labctl", "x", timeout=2.0, name="fohn")
    with pytest.raises(DriverError) as caught:
        IpmiClient(endpoint).power(PowerAction.ON)
    assert str(caught.value).startswith(
        "fohn BMC (127.255.255.255:623): power status: sending to 127.255.255.255 is not "
        "permitted: a firewall rule or a prohibit route blocks it"
    )
    assert caught.value.detail == "[Errno 13] Permission denied"
