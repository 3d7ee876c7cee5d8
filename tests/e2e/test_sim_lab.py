"""The simulated reference lab, end to end, with the reference clients (ssh, ipmitool, snmpset).

Needs root (CI runs as root). The lab's public addresses live only in namespaces
this test makes; `down` must leave no namespace, route, link, mount or process.
Every test here runs on the shared reference lab (tests/e2e/conftest.py) and puts
back what it changed; the last test of the session to use it checks `down` left nothing.
"""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.conftest import DIGIPOWER_STATUS, NODES, SECRETS, Lab, run
from tests.labctl_process import run_labctl

pytestmark = pytest.mark.e2e


@pytest.fixture
def lab(shared_lab: Lab) -> Lab:
    return shared_lab


def test_every_node_is_its_own_host(lab: Lab) -> None:
    second = lab.labctl("sim", "up")
    assert "nothing changed" in second.stdout
    for name, address in NODES.items():
        done = lab.ssh(address, "hostname; ip -br -4 addr; cat /run/labctl/bootdev")
        assert done.returncode == 0, done.stderr
        lines = done.stdout.split("\n")
        assert lines[0] == name
        assert f"{address}/28" in done.stdout
        assert "disk" in done.stdout
    assert lab.ssh(NODES["fohn"], "echo fohn-only > /etc/labctl-e2e").returncode == 0
    assert lab.ssh(NODES["chequita"], "cat /etc/labctl-e2e").returncode != 0
    assert not Path("/etc/labctl-e2e").exists()
    assert lab.ssh(NODES["fohn"], "rm /etc/labctl-e2e").returncode == 0
    assert (
        lab.ssh(NODES["fohn"], "touch /usr/labctl-e2e").returncode != 0
    )  # read-only outside overlays
    status = lab.labctl("sim", "status", "-o", "json")
    assert status.returncode == 0 and status.stdout.count('"ssh": true') == 3


def test_ipmitool_power_off_and_on(lab: Lab) -> None:
    ipmitool = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", "10.31.0.13", "-U", "labctl"]
    ipmitool += ["-P", SECRETS["LABCTL_BMC_PASSWORD_WIND"], "chassis", "power"]
    assert run(*ipmitool, "off").returncode == 0
    start = time.monotonic()
    while lab.ssh(NODES["wind"], "true").returncode == 0:
        assert time.monotonic() - start < 5, "wind still answers SSH 5 s after power off"
        time.sleep(0.2)
    assert "off" in run(*ipmitool, "status").stdout
    assert run(*ipmitool, "on").returncode == 0
    deadline = time.monotonic() + 10
    while lab.ssh(NODES["wind"], "true").returncode != 0:
        assert time.monotonic() < deadline, "wind did not come back"
        time.sleep(0.2)


def test_snmpset_outlet_off_cuts_node_and_bmc(lab: Lab) -> None:
    snmp = [
        "-v3",
        "-l",
        "authPriv",
        "-u",
        "labctl",
        "-a",
        "SHA",
        "-A",
        SECRETS["LABCTL_PDU_AUTH_KEY"],
    ]
    snmp += ["-x", "AES", "-X", SECRETS["LABCTL_PDU_PRIV_KEY"], "10.31.0.5", DIGIPOWER_STATUS]
    # chequita's only PSU is on pdu1 outlet 3
    assert run("snmpset", *snmp, "s", "1,1,0,1,1,1,1,1").returncode == 0
    time.sleep(1)
    assert lab.ssh(NODES["chequita"], "true").returncode != 0
    password = SECRETS["LABCTL_BMC_PASSWORD_CHEQUITA"]
    bmc = run(
        "ipmitool", "-I", "lanplus", "-C", "3", "-H", "10.31.0.12", "-U", "labctl", "-P", password,
        "-N", "1", "-R", "1", "chassis", "power", "status",
    )  # fmt: skip
    assert bmc.returncode != 0  # the BMC lost power too
    assert lab.ssh(NODES["fohn"], "true").returncode == 0  # others unaffected
    assert run("snmpset", *snmp, "s", "1,1,1,1,1,1,1,1").returncode == 0
    deadline = time.monotonic() + 10
    while lab.ssh(NODES["chequita"], "true").returncode != 0:
        assert time.monotonic() < deadline, "chequita did not come back with its outlet"
        time.sleep(0.2)


UNIT = """[Unit]
Description=labctl e2e hello
[Service]
Environment=GREETING=hello-from-unit
EnvironmentFile=-/etc/default/hello
ExecStart=/bin/sh -c 'echo "$GREETING $EXTRA" > /tmp/hello.out; exec sleep 600'
[Install]
WantedBy=multi-user.target
"""


def test_systemctl_stand_in_runs_units_and_starts_enabled_ones_at_boot(lab: Lab) -> None:
    fohn = NODES["fohn"]
    setup = (
        f"cat > /etc/systemd/system/hello.service <<'UNIT'\n{UNIT}UNIT\n"
        "echo EXTRA=from-file > /etc/default/hello && systemctl daemon-reload && "
        "systemctl start hello && systemctl is-active hello && cat /tmp/hello.out"
    )
    done = lab.ssh(fohn, setup)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "active" in done.stdout and "hello-from-unit from-file" in done.stdout
    assert (
        lab.ssh(fohn, "systemctl stop hello; systemctl is-active hello").stdout.strip()
        == "inactive"
    )
    assert lab.ssh(fohn, "systemctl enable hello && systemctl is-enabled hello").returncode == 0
    cycled = lab.labctl("power", "cycle", "fohn", "--force")  # a reboot, through the BMC
    assert cycled.returncode == 0, cycled.stdout + cycled.stderr
    deadline = time.monotonic() + 15
    while lab.ssh(fohn, "systemctl is-active hello").stdout.strip() != "active":
        assert time.monotonic() < deadline, "the enabled unit did not start at boot"
        time.sleep(0.3)
    log = lab.ssh(fohn, "cat /var/log/labctl-systemctl.log").stdout
    assert "start hello.service" in log and "enable hello.service" in log
    gone = "systemctl disable hello && systemctl stop hello && rm /etc/systemd/system/hello.service"
    assert lab.ssh(fohn, gone + " /etc/default/hello /tmp/hello.out").returncode == 0


def test_labctl_power_on_the_simulated_lab(lab: Lab) -> None:
    off = lab.labctl("power", "off", "wind")
    assert off.returncode == 0, off.stdout + off.stderr
    assert lab.ssh(NODES["wind"], "true").returncode != 0
    refused = lab.labctl("power", "off", "chequita")  # a second etcd member
    assert refused.returncode == 1 and "quorum" in refused.stderr
    assert lab.ssh(NODES["chequita"], "true").returncode == 0  # nothing was done
    assert lab.labctl("power", "on", "wind").returncode == 0
    first_boot = lab.ssh(NODES["fohn"], "cat /proc/1/stat").stdout.split()[
        21
    ]  # start time of pid 1
    cycled = lab.labctl("power", "cycle", "fohn")
    assert cycled.returncode == 0, cycled.stdout + cycled.stderr
    deadline = time.monotonic() + 10
    while True:
        done = lab.ssh(NODES["fohn"], "cat /proc/1/stat")
        if done.returncode == 0 and done.stdout.split()[21] != first_boot:
            break  # SSH went away and came back with a new boot
        assert time.monotonic() < deadline, "fohn did not come back from its power cycle"
        time.sleep(0.2)


def test_bootstrap_power_and_pki_steps_on_the_simulated_lab(lab: Lab) -> None:
    exports = lab.labctl("sim", "env").stdout
    env = dict(line.removeprefix("export ").split("=", 1) for line in exports.splitlines())
    env = {k: v.strip("'") for k, v in env.items()}

    def bootstrap(*extra: str) -> subprocess.CompletedProcess[str]:
        environ = {**SECRETS, **env, "LABCTL_CA_PASSPHRASE": "e2e-ca-passphrase"}
        return run_labctl("bootstrap", "-o", "json", *extra, cwd=lab.workdir, env=environ)

    def steps(done: subprocess.CompletedProcess[str], layer: str) -> dict[str, dict[str, str]]:
        report = json.loads(done.stdout)
        plans = next(x for x in report["layers"] if x["layer"] == layer)["plans"]
        return {s["target"]: s for plan in plans for s in plan["steps"]}

    assert lab.labctl("power", "off", "wind").returncode == 0
    planned = bootstrap("--only", "power", "--dry-run")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    power = steps(planned, "power")
    assert (power["wind"]["outcome"], power["wind"]["reason"]) == ("would-change", "power is off")
    assert power["fohn"]["outcome"] == "unchanged"
    assert lab.ssh(NODES["wind"], "true").returncode != 0  # the dry run changed nothing

    first = bootstrap("--only", "power", "--only", "pki")
    assert first.returncode == 0, first.stdout + first.stderr
    power = steps(first, "power")
    assert power["wind"]["outcome"] == "changed" and power["chequita"]["outcome"] == "unchanged"
    key = lab.ssh(NODES["chequita"], "stat -c %a /etc/ssl/etcd/etcd-peer-chequita-key.pem")
    assert key.stdout.strip() == "600"
    assert lab.ssh(NODES["fohn"], "test -f /etc/kubernetes/ssl/apiserver.pem").returncode == 0
    assert lab.ssh(NODES["wind"], "test -f /etc/kubernetes/ssl/apiserver.pem").returncode != 0
    assert lab.ssh(NODES["wind"], "test -f /etc/ssl/etcd/ca.pem").returncode == 0  # wind is up
    start = time.monotonic()
    again = bootstrap("--only", "power", "--only", "pki")
    elapsed = time.monotonic() - start
    assert again.returncode == 0
    report = json.loads(again.stdout)
    for layer in report["layers"]:
        if layer["layer"] in ("power", "pki"):
            assert all(plan["nothing_to_do"] for plan in layer["plans"]), again.stdout
    print(f"converged `labctl bootstrap --only power --only pki` on the sim: {elapsed:.2f} s")

    # A node that is still booting is waited for, not failed: wind is off when the pki
    # step starts and comes on three seconds later.
    assert lab.ssh(NODES["wind"], "rm /etc/ssl/etcd/ca.pem").returncode == 0
    assert lab.labctl("power", "off", "wind").returncode == 0
    with ThreadPoolExecutor(1) as pool:
        later = pool.submit(bootstrap, "--only", "pki")
        time.sleep(3)
        assert not later.done(), "bootstrap did not wait for wind"
        assert lab.labctl("power", "on", "wind").returncode == 0
        waited = later.result(timeout=60)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    wait = next(
        step
        for layer in json.loads(waited.stdout)["layers"]
        for plan in layer["plans"]
        for step in plan["steps"]
        if step["target"] == "wind" and step["step_id"].startswith("wait-for")
    )
    assert wait["outcome"] == "unchanged" and wait["seconds"] >= 2.5, wait
    assert lab.ssh(NODES["wind"], "test -f /etc/ssl/etcd/ca.pem").returncode == 0


SUDOERS = "/etc/sudoers.d/labctl-core"


def test_bootstrap_logs_in_as_core_and_goes_through_sudo(lab: Lab) -> None:
    """As on CoreOS: the inventory's user (core) logs in by key and has passwordless sudo."""
    exports = lab.labctl("sim", "env").stdout
    env = dict(line.removeprefix("export ").split("=", 1) for line in exports.splitlines())
    env = {k: v.strip("'") for k, v in env.items()}
    assert env["LABCTL_SSH_USER"] == "core"  # the reference inventory's lab.ssh.user
    assert "core" not in Path("/etc/passwd").read_text().split(":")  # made in the nodes only
    assert lab.ssh(NODES["wind"], "id -u core").stdout.strip() != "0"
    environ = {**SECRETS, **env, "LABCTL_CA_PASSPHRASE": "e2e-ca-passphrase"}
    done = run_labctl("bootstrap", "--only", "pki", "-o", "json", cwd=lab.workdir, env=environ)
    assert done.returncode == 0, done.stdout + done.stderr
    # /etc/ssl/etcd is root's: only sudo could have made these files, root-owned, 0600.
    key = lab.ssh(NODES["wind"], "stat -c '%U:%G %a' /etc/ssl/etcd/etcd-peer-wind-key.pem")
    assert key.stdout.strip() == "root:root 600", key.stdout + key.stderr
    # Without sudo rights, core cannot write there: the step fails and says why.
    saved = lab.ssh(NODES["wind"], f"cat {SUDOERS}").stdout
    assert lab.ssh(NODES["wind"], f"rm {SUDOERS} /etc/ssl/etcd/ca.pem").returncode == 0
    refused = run_labctl("bootstrap", "--only", "pki", cwd=lab.workdir, env=environ)
    assert refused.returncode == 1
    assert "core needs passwordless sudo on wind" in refused.stdout + refused.stderr
    restore = f"printf '%s' '{saved}' > {SUDOERS} && chmod 0440 {SUDOERS}"
    assert lab.ssh(NODES["wind"], restore).returncode == 0
    again = run_labctl("bootstrap", "--only", "pki", "-o", "json", cwd=lab.workdir, env=environ)
    assert again.returncode == 0, again.stdout + again.stderr
    assert lab.ssh(NODES["wind"], "test -f /etc/ssl/etcd/ca.pem").returncode == 0


def test_a_second_checkout_is_refused_and_the_first_lab_keeps_working(
    lab: Lab, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Issue 9: `sim up` of the same lab from another checkout used to take this one's link."""
    other = tmp_path_factory.mktemp("second-checkout")
    (other / "inventory.yaml").write_text((lab.workdir / "inventory.yaml").read_text())
    second = run_labctl("sim", "up", cwd=other, env=SECRETS)
    assert second.returncode == 1
    message = second.stderr.strip().splitlines()[-1]
    assert f"is already up from {lab.state.resolve()}" in message, second.stderr
    assert f"labctl sim down --state-dir {lab.state.resolve()}" in message
    assert "nothing was touched" in message and "Traceback" not in second.stderr
    assert not (other / ".labctl" / "sim").exists()  # it made nothing of its own either
    # The first lab is whole: its nodes answer SSH and its BMCs answer labctl.
    for address in NODES.values():
        assert lab.ssh(address, "true").returncode == 0
    status = lab.labctl("power", "status", "--all")
    assert status.returncode == 0, status.stdout + status.stderr
