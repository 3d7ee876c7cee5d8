"""A simulated server whose BMC speaks Redfish: `labctl power` through it really stops the node.

The reference lab with wind's BMC ``type: redfish``: `labctl sim up` gives wind the
sushy-tools Redfish emulator (its systems driver ``labctl/sim/redfish_system.py``)
on wind's BMC address in the fabric namespace, over HTTPS with a certificate from
the lab's BMC CA, which the inventory names in ``bmc.ca_file``; no ipmi_sim answers
there. `labctl power off/on/status` on wind go through labctl's Redfish driver
(sushy) and really stop and start the node (its SSH goes and comes back);
`labctl doctor` names the protocol the BMC speaks. Power only: nothing is
bootstrapped. A lab of its own (its inventory differs from the shared one's); first
of tests/e2e by name, so it takes no shared lab down.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from labctl.drivers.bmc_probe import rmcp_ping
from tests.conftest import REFERENCE
from tests.e2e.conftest import NODES, Lab, simulated_lab

pytestmark = pytest.mark.e2e
WIND_BMC = "10.31.0.13"


def redfish_inventory() -> str:
    text = REFERENCE.read_text()
    old = (
        "    bmc:\n      type: ilo\n      network: mgmt\n      address: 10.31.0.13\n"
        "      username: labctl                       # invented\n"
        "      password: {env: LABCTL_BMC_PASSWORD_WIND}\n"
    )
    assert old in text
    return text.replace(
        old,
        "    bmc:\n      type: redfish\n      network: mgmt\n      address: 10.31.0.13\n"
        "      username: labctl\n      password: {env: LABCTL_BMC_PASSWORD_WIND}\n"
        # The simulated lab's BMC CA (its default state directory, beside the inventory).
        "      ca_file: .labctl/sim/bmc-ca.crt\n",
    )


def power_status(lab: Lab) -> str:
    done = lab.labctl("power", "status", "wind", "-o", "json")
    assert done.returncode in (0, 1), done.stdout + done.stderr
    after: str = json.loads(done.stdout)["targets"][0]["after"]
    return after


def wait_ssh(lab: Lab, up: bool, within: float) -> float:
    start = time.monotonic()
    while (lab.ssh(NODES["wind"], "true").returncode == 0) != up:
        assert time.monotonic() - start < within, f"wind's SSH not {'back' if up else 'gone'}"
        time.sleep(0.2)
    return time.monotonic() - start


def test_redfish_bmc_really_powers_a_simulated_server(tmp_path: Path) -> None:
    with simulated_lab(tmp_path, redfish_inventory()) as lab:
        # wind's BMC is the Redfish emulator alone: no IPMI answers on its address.
        assert not rmcp_ping(WIND_BMC, 623, 1.0)
        status = lab.labctl("sim", "status", "-o", "json")
        assert status.returncode == 0, status.stdout + status.stderr
        rows = {n["name"]: n for n in json.loads(status.stdout)["nodes"]}
        assert rows["wind"]["bmc_answers"] is True

        # doctor names the protocol: Redfish answers with wind's identity, over the CA.
        done = lab.labctl("doctor", "--only", "DOC001", "-o", "json")
        assert done.returncode == 0, done.stdout + done.stderr
        bmcs = {b["server"]: b for b in json.loads(done.stdout)["bmcs"]}
        assert (bmcs["wind"]["configured"], bmcs["wind"]["speaks"]) == ("redfish", "redfish")
        assert "Sushy Emulator" in bmcs["wind"]["identity"]
        assert (bmcs["fohn"]["configured"], bmcs["fohn"]["speaks"]) == ("ipmi", "ipmi")

        assert power_status(lab) == "on"
        off = lab.labctl("power", "off", "wind", "--force")
        assert off.returncode == 0, off.stdout + off.stderr
        gone = wait_ssh(lab, up=False, within=5)
        assert power_status(lab) == "off"
        assert lab.ssh(NODES["fohn"], "true").returncode == 0  # only wind went down

        on = lab.labctl("power", "on", "wind")
        assert on.returncode == 0, on.stdout + on.stderr
        back = wait_ssh(lab, up=True, within=20)
        assert power_status(lab) == "on"
        print(f"Redfish power off: SSH gone in {gone:.1f} s; power on: back in {back:.1f} s")
