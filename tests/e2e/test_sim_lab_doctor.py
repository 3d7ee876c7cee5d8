"""`labctl doctor` on the shared simulated reference lab: fit, then the faults it exists for.

The lab's real peers answer doctor: ipmi_sim (IPMI 2.0, cipher suites 17 and 3),
the PDUs' SNMP agents (SNMPv3 authPriv), each node's sshd, etcd, and the BGP
fabric (FRR on the switches, BIRD on the nodes). After power, pki, etcd and calico
are bootstrapped (converged where earlier tests ran them), doctor finds the lab
fit. Then, at once, wind's BMC dies, chequita's etcd member stops, kek-core's FRR
stops (its sessions drop) and the PDUs are asked with a wrong SNMP key: one doctor
run names each by its check id, within its bound, and everything is put back.

The DNS check (DOC050) is skipped: the reference inventory's resolvers are public
addresses, and tests send nothing outside the lab. The clock check cannot be made
to fail here: the simulated nodes are namespaces of one kernel, and Linux time
namespaces do not cover CLOCK_REALTIME (docs/sim.md); its verdict is unit-tested.

The file is named to run after test_sim_lab.py, with the shared lab's other users.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

import pytest

from tests.e2e.conftest import NODES, Lab
from tests.labctl_process import run_labctl

pytestmark = pytest.mark.e2e

KEK_CORE = "10.31.0.2"
DOCTOR_BOUND = 10.0  # seconds: the target on the reference lab with a dead BMC


def labctl(lab: Lab, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_labctl(*args, cwd=lab.workdir, env={**lab.env(), **env})


def doctor(lab: Lab, **env: str) -> tuple[int, dict[str, Any], float]:
    start = time.monotonic()
    done = labctl(lab, "doctor", "-o", "json", "--skip", "DOC050", **env)
    took = time.monotonic() - start
    assert done.stdout.startswith("{"), done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout), took


def bgp_established(lab: Lab, within: float) -> None:
    end = time.monotonic() + within
    while labctl(lab, "bgp", "status").returncode != 0:
        assert time.monotonic() < end, labctl(lab, "bgp", "status").stdout
        time.sleep(1)


def test_doctor_finds_the_lab_fit_then_names_a_dead_bmc_a_wrong_key_etcd_and_bgp(
    shared_lab: Lab,
) -> None:
    lab = shared_lab
    layers = ("--only", "power", "--only", "pki", "--only", "etcd", "--only", "calico")
    up = labctl(lab, "bootstrap", *layers)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    bgp_established(lab, 40)

    code, fit, took = doctor(lab)
    assert code == 0 and fit["fit"], fit
    # ipmi_sim (OpenIPMI) has no RAKP-HMAC-SHA256: it refuses suite 17 and takes 3, as
    # `ipmitool -I lanplus -C 17` finds too. A warning, once per BMC: the lab is fit.
    findings = fit["findings"]
    assert {(f["check"], f["severity"], f["subject"]) for f in findings} == {
        ("DOC002", "warning", name) for name in NODES
    }, findings
    assert all("refuses cipher suite(s) 17 but takes 3" in f["message"] for f in findings)
    # One kernel's clock: every node within the bound (a skewed one cannot be made here).
    assert set(fit["clocks"]) == set(NODES) and all(abs(o) < 1 for o in fit["clocks"].values())
    speaks = {b["server"]: (b["speaks"], b["cipher_suites"]["3"]) for b in fit["bmcs"]}
    assert speaks == {name: ("ipmi", "accepted") for name in NODES}, speaks
    # Kubernetes and Ceph never ran on this lab: said, not counted as fit or unfit.
    assert "DOC041" in fit["not_run"] and "DOC042" in fit["not_run"], fit
    print(f"doctor on the fit lab: {took:.1f} s")

    # The faults, all at once.
    record = json.loads((lab.state / "sim.json").read_text())
    daemon = lab.state / "bmcs" / "wind" / "daemon.pid"
    bmc = int(daemon.read_text()) if daemon.exists() else record["pids"]["bmc:wind"]
    os.kill(bmc, signal.SIGKILL)
    assert lab.ssh(NODES["chequita"], "systemctl stop etcd-member.service").returncode == 0
    assert lab.ssh(KEK_CORE, "systemctl stop frr").returncode == 0
    try:
        code, sick, took = doctor(lab, LABCTL_PDU_AUTH_KEY="wrong-key-doctor")
        assert code == 1 and not sick["fit"], sick
        errors = [f for f in sick["findings"] if f["severity"] == "error"]
        found = {(f["check"], f["subject"]) for f in errors}
        said = "\n".join(f["message"] for f in errors)
        assert ("DOC001", "wind") in found, said
        assert ("DOC010", "pdu1") in found and ("DOC010", "pdu2") in found, said
        assert "refuses the configured SNMP security" in said, said
        assert ("DOC040", "etcd") in found and "chequita" in said, said
        assert ("DOC043", "bgp") in found and "kek-core" in said, said
        # No other error: fohn's and chequita's BMCs, SSH and the certificates are fine.
        assert {c for c, _ in found} == {"DOC001", "DOC010", "DOC040", "DOC043"}, said
        assert took < DOCTOR_BOUND, f"doctor took {took:.1f} s with a dead BMC"
        print(f"doctor with a dead BMC, a wrong key, etcd and BGP down: {took:.1f} s")
    finally:
        assert lab.ssh(KEK_CORE, "systemctl start frr").returncode == 0
        assert lab.ssh(NODES["chequita"], "systemctl start etcd-member.service").returncode == 0
        assert lab.labctl("sim", "up").returncode == 0  # wind's BMC back
    bgp_established(lab, 40)
    code, again, _ = doctor(lab)
    assert code == 0, again
