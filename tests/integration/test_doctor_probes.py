"""`labctl doctor`'s probes against real peers on loopback: ipmi_sim, sushy-tools, dnsmasq.

Which protocol a BMC speaks is asked without credentials (drivers/bmc_probe.py):
OpenIPMI's ipmi_sim answers the RMCP presence ping and has no Redfish service
root; the sushy-tools Redfish emulator serves its root and answers no ping. The
DNS question (drivers/dns.py) is asked of dnsmasq serving one name: the address,
NXDOMAIN for another name, and a resolver that is not there, each as a sentence.
Then `labctl doctor` itself reads ipmi_sim's cipher suites, the emulator's system
and a BMC address where nothing listens, in one run within its bound.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.drivers.bmc_probe import redfish_service_root, rmcp_ping
from labctl.drivers.dns import resolve_a
from labctl.errors import DriverError
from labctl.sim import bmc as sim_bmc
from tests.integration.test_redfish_bmc import ADDRESS as REDFISH_ADDRESS
from tests.integration.test_redfish_bmc import Lab, lab  # noqa: F401  (the emulator fixture)
from tests.labctl_process import run_labctl
from tests.peers.ports import free_udp_port

pytestmark = pytest.mark.integration
IPMI_ADDRESS = "127.31.0.12"  # chequita's BMC, the reference lab's mgmt address on loopback
PASSWORD = "chequita-doctor-pw"


@pytest.fixture
def ipmi_bmc(tmp_path: Path) -> Iterator[sim_bmc.BmcSpec]:
    assert shutil.which("ipmi_sim"), "install openipmi"
    spec = sim_bmc.BmcSpec(
        name="chequita",
        address=IPMI_ADDRESS,
        port=free_udp_port(),
        username="labctl",
        password=PASSWORD,
        state_dir=tmp_path / "ipmi",
    )
    handle = sim_bmc.start(spec)
    try:
        yield spec
    finally:
        handle.stop()


def test_each_protocol_answers_its_own_probe_only(
    ipmi_bmc: sim_bmc.BmcSpec,
    lab: Lab,  # noqa: F811
) -> None:
    assert rmcp_ping(IPMI_ADDRESS, ipmi_bmc.port, 2.0)
    assert redfish_service_root(REDFISH_ADDRESS, lab.port, 2.0)
    assert not rmcp_ping(REDFISH_ADDRESS, lab.port, 1.0)  # a TCP service: no UDP answer
    assert not redfish_service_root(IPMI_ADDRESS, lab.port, 1.0)  # nothing listens there


def test_doctor_reads_suites_a_redfish_system_and_a_silent_bmc_in_one_run(
    ipmi_bmc: sim_bmc.BmcSpec,
    lab: Lab,  # noqa: F811
) -> None:
    text = lab.inventory.read_text()
    chequita = "      address: 127.31.0.12\n"
    assert text.count(chequita) == 1
    lab.inventory.write_text(text.replace(chequita, f"{chequita}      port: {ipmi_bmc.port}\n"))
    env = {
        "LABCTL_BMC_PASSWORD_FOHN": "nobody-there",
        "LABCTL_BMC_PASSWORD_CHEQUITA": PASSWORD,
        "LABCTL_BMC_PASSWORD_WIND": "wind-redfish-pw",
    }
    start = time.monotonic()
    done = run_labctl(
        "doctor", "-i", str(lab.inventory), "--only", "DOC001", "--only", "DOC002",
        "-o", "json", "--timeout", "1", env=env,
    )  # fmt: skip
    took = time.monotonic() - start
    assert done.returncode == 1, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    bmcs = {b["server"]: b for b in doc["bmcs"]}
    assert bmcs["chequita"]["speaks"] == "ipmi"
    assert bmcs["chequita"]["cipher_suites"]["3"] == "accepted"
    assert bmcs["chequita"]["cipher_suites"]["17"] != "accepted"  # OpenIPMI: no SHA-256
    assert bmcs["wind"]["speaks"] == "redfish" and bmcs["wind"]["identity"]
    assert bmcs["fohn"]["speaks"] is None
    found = {(f["check"], f["subject"], f["severity"]) for f in doc["findings"]}
    assert found == {("DOC001", "fohn", "error"), ("DOC002", "chequita", "warning")}, found
    assert took < 10, f"doctor took {took:.1f} s"


# -- DNS against dnsmasq ----------------------------------------------------------------------


@pytest.fixture
def resolver(tmp_path: Path) -> Iterator[int]:
    dnsmasq = shutil.which("dnsmasq")
    assert dnsmasq, "install dnsmasq"
    port = free_udp_port()
    proc = subprocess.Popen(
        [
            dnsmasq, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-daemon",
            "--listen-address=127.0.0.1", "--bind-interfaces", f"--port={port}",
            "--user=root", f"--pid-file={tmp_path / 'dnsmasq.pid'}",
            "--address=/api.sthlm.lab.example.net/31.31.164.220",
            "--local=/lab.example.net/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                resolve_a("api.sthlm.lab.example.net", ["127.0.0.1"], 0.5, port)
                break
            except DriverError:
                assert time.monotonic() < deadline, "dnsmasq did not answer within 10 s"
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_dns_answers_nxdomain_and_no_resolver_are_said(resolver: int) -> None:
    assert resolve_a("api.sthlm.lab.example.net", ["127.0.0.1"], 2.0, resolver) == (
        "127.0.0.1",
        ["31.31.164.220"],
    )
    with pytest.raises(DriverError, match=r"no such name \(NXDOMAIN\) \(on 127.0.0.1\)"):
        resolve_a("fohn.lab.example.net", ["127.0.0.1"], 2.0, resolver)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(DriverError, match=r"no resolver answered: 127\.0\.0\.1: "):
        resolve_a("api.sthlm.lab.example.net", ["127.0.0.1"], 1.0, port)
