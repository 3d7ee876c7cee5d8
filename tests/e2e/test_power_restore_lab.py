"""A cold start and graceful power on the simulated reference lab, on the shared lab.

One test, on the shared lab, because it is the expensive one: etcd bootstrapped (so
there is a layer whose health the restore must wait for), then every outlet of both
real SNMP PDUs cut (every node and BMC goes dark), then brought back tier by tier
by the real PDUs, BMCs, SSH and etcd; after it the lab is whole again (the shared
lab's own check), etcd answers healthy, and the timeline is kept beside the journal.

Then graceful power, with the calico layer up (FRR on the switches, BIRD on the
nodes): `labctl power cycle wind` first has both switches stop preferring wind, and
the routes through wind (chequita's block, which the mesh re-announces through every
node) leave it before wind's node stops; after the cycle the sessions are Established
and wind is called back, the switches run exactly what labctl renders again.

Then a soft stop that escalates against the lab's real peers: wind's chassis ignores
ACPI soft-off (a fault of the simulated platform, ``labctl.sim.chassis.ignore``) and its
BMC (ipmi_sim) is killed once the soft request reached it, so `labctl power soft wind`
asks soft, waits, tries the hard off through the dead BMC, and cuts wind's outlets on
both real SNMP PDUs; `labctl power on wind --via pdu` brings the outlets, the BMC and the
node back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from labctl.sim import chassis
from tests.e2e.conftest import NODES, Lab
from tests.labctl_process import run_labctl

pytestmark = pytest.mark.e2e

SWITCH_OUTLETS = {"pdu1:4", "pdu1:5", "pdu2:3", "pdu2:4", "pdu2:5"}
SERVER_OUTLETS = {"pdu1:1", "pdu1:2", "pdu1:3", "pdu2:1", "pdu2:2"}
KEK_CORE = "10.31.0.2"
CHEQUITA_BLOCK = "10.188.0.64/26"


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
    tiers = ", ".join(f"{t['name']} healthy at {t['healthy']} s" for t in report["tiers"])
    print(f"power restore --drill on the sim: {took:.1f} s; {tiers}; all at {report['seconds']} s")
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


def _routes(lab: Lab) -> dict[str, list[str]]:
    """kek-core's installed BGP routes (none while its FRR does not answer: just restarted)."""
    try:
        done = lab.ssh(KEK_CORE, "vtysh -c 'show ip route bgp json'")
    except subprocess.TimeoutExpired:
        return {}
    if done.returncode != 0:
        return {}
    out = {}
    for prefix, entries in json.loads(done.stdout).items():
        for e in entries:
            if e.get("selected") and e.get("installed"):
                out[prefix] = [h["ip"] for h in e["nexthops"] if h.get("active")]
    return out


def _alive(lab: Lab, node: str) -> bool:
    pid = lab.state / "nodes" / node / "pid"
    try:
        os.kill(int(pid.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def test_a_power_cycle_moves_routes_off_the_node_first_and_calls_it_back(lab: Lab) -> None:
    environ = lab.env()
    up = run_labctl(
        "bootstrap", "--only", "power", "--only", "pki", "--only", "etcd", "--only", "calico",
        cwd=lab.workdir, env=environ, timeout=600,
    )  # fmt: skip
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    wind = NODES["wind"]
    deadline = time.monotonic() + 30
    while wind not in _routes(lab).get(CHEQUITA_BLOCK, []):
        assert time.monotonic() < deadline, _routes(lab)
        time.sleep(0.5)

    # Watch kek-core's routes and wind's node while the cycle runs.
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            now = time.monotonic()
            hops = _routes(lab).get(CHEQUITA_BLOCK)
            if hops and wind not in hops:
                seen.setdefault("moved", now)
            if not _alive(lab, "wind"):
                seen.setdefault("dark", now)
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        done = run_labctl(
            "power", "cycle", "wind", "-o", "json", cwd=lab.workdir, env=environ, timeout=300
        )
    finally:
        stop.set()
        watcher.join()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    said = json.loads(done.stdout)["said"]
    print("\n".join(said))
    assert any("routes moved off it on astrid, kek-core" in s for s in said), said
    assert any("sessions Established" in s and "called back" in s for s in said), said
    assert "moved" in seen and "dark" in seen, seen
    assert seen["moved"] < seen["dark"], seen  # the routes left wind before its power did

    # Called back: no drain left on the switches, which run what labctl renders again.
    for switch in ("kek-core", "astrid"):
        diff = run_labctl("switch", "diff", switch, "-o", "json", cwd=lab.workdir, env=environ)
        assert diff.returncode == 0 and json.loads(diff.stdout)["same"], diff.stdout
    deadline = time.monotonic() + 30
    while wind not in _routes(lab).get(CHEQUITA_BLOCK, []):
        assert time.monotonic() < deadline, _routes(lab)
        time.sleep(0.5)


def _bmc_pid(lab: Lab, server: str) -> int:
    daemon = lab.state / "bmcs" / server / "daemon.pid"
    if daemon.exists():
        return int(daemon.read_text())
    return int(json.loads((lab.state / "sim.json").read_text())["pids"][f"bmc:{server}"])


def test_a_soft_stop_the_os_ignores_with_a_dead_bmc_ends_at_the_pdu(lab: Lab) -> None:
    environ = lab.env()
    board = lab.state / "bmcs" / "wind"
    log = board / "chassis.log"  # what wind's chassis was asked, in order

    def asked() -> str:
        return log.read_text() if log.exists() else ""

    seen = asked()
    chassis.ignore(board, {"soft"})
    start = time.monotonic()
    stop = subprocess.Popen(
        [sys.executable, "-m", "labctl", "power", "soft", "wind", "--no-graceful",
         "--soft-wait", "3", "--timeout", "1", "--settle", "10", "-o", "json"],
        cwd=lab.workdir, env={**os.environ, **environ}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # The soft request reached wind's chassis (and was ignored): now its BMC dies.
        deadline = time.monotonic() + 30
        while "soft shutdown ignored" not in asked()[len(seen) :]:
            assert stop.poll() is None, stop.communicate()
            assert time.monotonic() < deadline, asked()[-2000:]
            time.sleep(0.05)
        os.kill(_bmc_pid(lab, "wind"), signal.SIGKILL)
        out, err = stop.communicate(timeout=120)
        took = time.monotonic() - start
        assert stop.returncode == 0, out[-3000:] + err[-3000:]
        report = json.loads(out)
        print("\n".join(report["said"]) + f"\npower soft wind, escalated: {took:.1f} s")
        (target,) = report["targets"]
        assert target["steps"] == ["soft", "off", "pdu off"] and target["after"] == "off"
        said = report["said"]
        assert said[0].startswith("wind: soft stop asked"), said
        assert "hard off (BMC)" in said[1], said  # not down within the bound
        assert "the hard off failed" in said[2] and "cutting its PDU outlets" in said[2], said
        assert "off at its PDU outlets" in said[3], said
        assert not _alive(lab, "wind")
        assert lab.ssh(NODES["wind"], "true").returncode != 0
        assert lab.ssh(NODES["fohn"], "true").returncode == 0  # only wind went dark
    finally:
        chassis.ignore(board, ())
        if stop.poll() is None:
            stop.kill()
            stop.communicate()
    back = run_labctl(
        "power", "on", "wind", "--via", "pdu", "--yes", "-o", "json",
        cwd=lab.workdir, env=environ,
    )  # fmt: skip
    assert back.returncode == 0, back.stdout[-3000:] + back.stderr[-3000:]
    deadline = time.monotonic() + 30
    while lab.ssh(NODES["wind"], "true").returncode != 0:
        assert time.monotonic() < deadline, "wind did not come back after its outlets"
        time.sleep(0.5)
    # Its BMC says so too, within the bound (a BMC back from an AC restore may take a
    # moment). It said "off" for good while wind answered SSH when both outlets' feed
    # hooks started a node each (labctl/sim/feeds.py now takes them in turn).
    while True:
        status = run_labctl("power", "status", "wind", "-o", "json", cwd=lab.workdir, env=environ)
        if status.returncode == 0 and '"after": "on"' in status.stdout:
            break
        assert time.monotonic() < deadline + 30, status.stdout + status.stderr
        time.sleep(0.5)
