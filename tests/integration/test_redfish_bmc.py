"""A Redfish BMC driven through `labctl power`, against the real sushy-tools emulator.

sushy-emulator (OpenStack's Redfish emulator) runs on loopback with its fake
systems driver (no libvirt), over HTTPS with a certificate from the simulated lab's BMC CA, behind
basic auth from an htpasswd (bcrypt) file. The reference inventory's wind gets a
``type: redfish`` BMC pointing at it, with that CA as its ``ca_file``.
The emulator's fake driver applies a power change some seconds after it is asked,
as hardware does, so labctl's wait for the state is exercised too: it draws 1 to 11 s
at random, which the test's emulator fixes at 1 to 2 s (``EMULATOR``), so a status read
right after the request still finds the old state and labctl must wait.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest

from labctl.drivers.redfish import RedfishClient, RedfishEndpoint
from labctl.errors import DriverError
from labctl.sim import redfish_bmc
from tests.conftest import REFERENCE
from tests.labctl_process import run_labctl

pytestmark = pytest.mark.integration
ADDRESS = "127.31.0.13"
PASSWORD = "wind-redfish-pw"
UUID = "8a1e4c6e-4f7b-4d64-9d3c-5b0f6a2e9c11"
SECRETS = {
    "LABCTL_BMC_PASSWORD_FOHN": "unused",
    "LABCTL_BMC_PASSWORD_CHEQUITA": "unused",
    "LABCTL_BMC_PASSWORD_WIND": PASSWORD,
}


# sushy-emulator as its console script starts it, with the fake driver's delay (its
# `int(time.time()) + random.randint(1, 11)`) drawn as 2: 1 to 2 s, not up to 11.
EMULATOR = (
    "import random, sys; random.randint = lambda low, high: 2; "
    "from sushy_tools.emulator.main import main; sys.argv[0] = 'sushy-emulator'; "
    "sys.exit(main())"
)


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _certificate(tmp: Path) -> tuple[Path, Path, Path]:
    """wind's BMC certificate from the simulated lab's BMC CA (the code `sim up` runs):
    (certificate, key, CA certificate for the inventory's ``ca_file``)."""
    spec = redfish_bmc.RedfishBmcSpec(
        name="wind", address=ADDRESS, port=0, scheme="https", username="labctl",
        password=PASSWORD, state_dir=tmp,
    )  # fmt: skip
    cert, key = redfish_bmc.certificate(tmp, spec)
    return cert, key, redfish_bmc.lab_ca(tmp)


@dataclass
class Lab:
    inventory: Path
    port: int
    ca_file: Path

    def labctl(self, *args: str, password: str = PASSWORD) -> tuple[int, str]:
        env = SECRETS | {"LABCTL_BMC_PASSWORD_WIND": password}
        done = run_labctl(*args, "-i", str(self.inventory), env=env)
        return done.returncode, done.stdout + done.stderr

    def set_bmc(self, **fields: str | int) -> None:
        text = self.inventory.read_text()
        head, _, tail = text.partition("    bmc:\n      type: redfish\n")
        rest = tail.split("    nics:\n", 1)[1]
        lines = "".join(f"      {k}: {v}\n" for k, v in fields.items())
        self.inventory.write_text(f"{head}    bmc:\n      type: redfish\n{lines}    nics:\n{rest}")


def _redfish_inventory(text: str, port: int, ca_file: Path) -> str:
    old = (
        "    bmc:\n      type: ilo\n      network: mgmt\n      address: 127.31.0.13\n"
        "      username: labctl                       # invented\n"
        "      password: {env: LABCTL_BMC_PASSWORD_WIND}\n"
    )
    assert old in text
    return text.replace(
        old,
        "    bmc:\n      type: redfish\n      network: mgmt\n      address: 127.31.0.13\n"
        f"      port: {port}\n      username: labctl\n"
        "      password: {env: LABCTL_BMC_PASSWORD_WIND}\n"
        f"      ca_file: {ca_file.name}\n",
    )


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    cert, key, ca = _certificate(tmp_path)
    htpasswd = tmp_path / "htpasswd"
    digest = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    htpasswd.write_text(f"labctl:{digest}\n")
    config = tmp_path / "emulator.conf"
    systems = [{"uuid": UUID, "name": "wind", "power_state": "Off", "external_notifier": False}]
    config.write_text(
        f"SUSHY_EMULATOR_AUTH_FILE = {str(htpasswd)!r}\n"
        f"SUSHY_EMULATOR_FAKE_SYSTEMS = {systems!r}\n"
        f"SUSHY_EMULATOR_STATE_DIR = {str(tmp_path / 'state')!r}\n"
    )
    port = _free_port(ADDRESS)
    log = (tmp_path / "emulator.log").open("w")
    emulator = subprocess.Popen(
        [
            sys.executable, "-c", EMULATOR,
            "--config", str(config), "--fake", "-i", ADDRESS, "-p", str(port),
            "--ssl-certificate", str(cert), "--ssl-key", str(key),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            assert emulator.poll() is None, (tmp_path / "emulator.log").read_text()
            with socket.socket() as s:
                if s.connect_ex((ADDRESS, port)) == 0:
                    break
            assert time.monotonic() < deadline, "sushy-emulator did not listen within 20 s"
            time.sleep(0.1)
        inventory = tmp_path / "inventory.yaml"
        text = REFERENCE.read_text().replace("10.31.0.", "127.31.0.")
        inventory.write_text(_redfish_inventory(text, port, ca))
        yield Lab(inventory, port, ca)
    finally:
        emulator.send_signal(signal.SIGTERM)
        try:
            emulator.wait(timeout=10)
        except subprocess.TimeoutExpired:
            emulator.kill()
            emulator.wait()
        log.close()


def _status(lab: Lab) -> dict[str, object]:
    code, out = lab.labctl("power", "status", "wind", "-o", "json")
    assert code in (0, 1), out
    target: dict[str, object] = json.loads(out)["targets"][0]
    return target


def test_power_on_off_and_cycle_through_labctl_power(lab: Lab) -> None:
    assert _status(lab)["after"] == "off"
    code, out = lab.labctl("power", "on", "wind")
    assert code == 0, out
    assert _status(lab)["after"] == "on"
    # The emulator lists no PowerCycle: cycle falls back to ForceRestart, and comes back on.
    code, out = lab.labctl("power", "cycle", "wind", "--yes", "--force")
    assert code == 0, out
    assert _status(lab)["after"] == "on"
    code, out = lab.labctl("power", "off", "wind", "--force")
    assert code == 0, out
    assert _status(lab)["after"] == "off"


def test_soft_is_a_graceful_shutdown(lab: Lab) -> None:
    assert lab.labctl("power", "on", "wind")[0] == 0
    code, out = lab.labctl("power", "soft", "wind", "--force")
    assert code == 0, out
    assert _status(lab)["after"] == "off"


def test_boot_device_once_and_identity(lab: Lab) -> None:
    code, out = lab.labctl("power", "bootdev", "pxe", "wind")
    assert code == 0, out
    client = RedfishClient(
        RedfishEndpoint(
            host=ADDRESS,
            port=lab.port,
            username="labctl",
            password=PASSWORD,
            verify=str(lab.ca_file),
            name="wind",
        )
    )
    try:
        from labctl.drivers.ipmi import BootDevice

        # The emulator keeps the target but always reports BootSourceOverrideEnabled
        # Continuous (its system template), so only the device is read back here.
        assert client.boot_device()[0] is BootDevice.PXE
        identity = client.identity()
        assert identity.uuid == UUID and identity.id == UUID
        assert "Off" in str(client.allowed_resets()) or client.allowed_resets() is None
    finally:
        client.close()


def test_wrong_password_is_a_sentence(lab: Lab) -> None:
    code, out = lab.labctl("power", "status", "wind", "-o", "json", password="not-it")
    assert code == 1, out
    error = json.loads(out)["targets"][0]["error"]
    assert error == (
        f"wind BMC ({ADDRESS}:{lab.port}): power status: the BMC refused user 'labctl' "
        "(HTTP 401: wrong user name or password, or no rights)"
    )
    assert "Traceback" not in out


def test_certificate_not_trusted_without_ca_file(lab: Lab) -> None:
    lab.set_bmc(network="mgmt", address=ADDRESS, port=lab.port, username="labctl",
                password="{env: LABCTL_BMC_PASSWORD_WIND}")  # fmt: skip
    code, out = lab.labctl("power", "status", "wind", "-o", "json")
    assert code == 1, out
    error = json.loads(out)["targets"][0]["error"]
    assert "the BMC's TLS certificate is not trusted" in error and "bmc.ca_file" in error


def test_verify_false_accepts_the_certificate_and_says_nothing_more(lab: Lab) -> None:
    lab.set_bmc(network="mgmt", address=ADDRESS, port=lab.port, username="labctl",
                password="{env: LABCTL_BMC_PASSWORD_WIND}", verify="false")  # fmt: skip
    code, out = lab.labctl("power", "status", "wind", "-o", "json")
    assert code == 0, out
    assert json.loads(out)["targets"][0]["after"] == "off"  # stdout and stderr: JSON only


def test_unknown_system_names_the_ones_there_are(lab: Lab) -> None:
    lab.set_bmc(network="mgmt", address=ADDRESS, port=lab.port, username="labctl",
                password="{env: LABCTL_BMC_PASSWORD_WIND}", ca_file=lab.ca_file.name,
                system="System.Embedded.1")  # fmt: skip
    code, out = lab.labctl("power", "status", "wind", "-o", "json")
    assert code == 1, out
    error = json.loads(out)["targets"][0]["error"]
    assert error == (
        f"wind BMC ({ADDRESS}:{lab.port}): the Redfish service has no system "
        f"'System.Embedded.1' (bmc.system); it has: {UUID}"
    )


def test_a_service_that_never_answers_fails_within_the_timeout(tmp_path: Path) -> None:
    """A port that accepts connections and then says nothing: the read is bounded."""
    listener = socket.socket()
    listener.bind((ADDRESS, 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    client = RedfishClient(
        RedfishEndpoint(
            host=ADDRESS, port=port, scheme="http", username="labctl", password="x", timeout=1.0
        )
    )
    try:
        started = time.monotonic()
        with pytest.raises(DriverError) as caught:
            client.power_state()
        assert time.monotonic() - started < 3
        assert str(caught.value).startswith(f"BMC {ADDRESS}:{port}: power status: ")
        assert "no answer" in str(caught.value) or "timed out" in str(caught.value)
    finally:
        stop.set()
        thread.join()
        for s in held:
            s.close()
        listener.close()
