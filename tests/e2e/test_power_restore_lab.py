"""A cold start on the simulated reference lab: `labctl power restore --drill --yes`.

One test, on the shared lab, because it is the expensive one: etcd bootstrapped (so
there is a layer whose health the restore must wait for), then every outlet of both
real SNMP PDUs cut (every node and BMC goes dark), then brought back tier by tier
by the real PDUs, BMCs, SSH and etcd; after it the lab is whole again (the shared
lab's own check), etcd answers healthy, and the timeline is kept beside the journal.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import NODES, Lab
from tests.labctl_process import run_labctl

pytestmark = pytest.mark.e2e

SWITCH_OUTLETS = {"pdu1:4", "pdu1:5", "pdu2:3", "pdu2:4", "pdu2:5"}
SERVER_OUTLETS = {"pdu1:1", "pdu1:2", "pdu1:3", "pdu2:1", "pdu2:2"}


@pytest.fixture
def lab(shared_lab: Lab) -> Lab:
    return shared_lab


def test_a_drill_cuts_every_outlet_and_restore_brings_the_whole_lab_back(lab: Lab) -> None:
    environ = lab.env()
    up = run_labctl(
        "bootstrap", "--only", "power", "--only", "pki", "--only", "etcd",
        cwd=lab.workdir, env=environ, timeout=600,
    )  # fmt: skip
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]

    refused = run_labctl("power", "restore", "--drill", cwd=lab.workdir, env=environ)
    assert refused.returncode == 2 and "add --yes" in refused.stderr  # no terminal, no --yes

    start = time.monotonic()
    done = run_labctl(
        "power", "restore", "--drill", "--yes", "-o", "json",
        cwd=lab.workdir, env=environ, timeout=600,
    )  # fmt: skip
    took = time.monotonic() - start
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    print(f"power restore --drill on the sim: {took:.1f} s, lab healthy at {report['seconds']} s")
    assert report["ok"] and report["drill"]
    assert [t["name"] for t in report["tiers"]] == ["switches", "storage and etcd members"]
    events = [str(e["event"]) for e in report["timeline"]]
    assert events[0] == "drill: cut 10 outlets on 2 PDUs"
    switched = [e.split()[1] for e in events if e.startswith("outlet ") and e.endswith(" on")]
    assert set(switched[:5]) == SWITCH_OUTLETS and set(switched[5:]) == SERVER_OUTLETS
    assert "healthy: etcd" in events and events[-1] == "every layer healthy"
    # The nodes were really dark, and came back: each one's BMC restarted with its outlet.
    assert all(f"{name} is on" in events for name in NODES)
    kept = json.loads((lab.workdir / ".labctl" / "restore-timeline.json").read_text())
    assert kept["timeline"] == report["timeline"]

    status = run_labctl("etcd", "status", "-o", "json", cwd=lab.workdir, env=environ)
    assert status.returncode == 0, status.stdout + status.stderr
    for name, address in NODES.items():
        assert lab.ssh(address, "true").returncode == 0, name
