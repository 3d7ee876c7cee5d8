"""A cold start: the tier planner (pure), and the run's order, stagger and bounds with fakes.

The fakes stand in for the PDUs and BMCs only to time and order what the run asks;
tests/e2e/test_power_restore_lab.py runs the same code against the simulated lab's
real PDUs, BMCs, SSH and etcd.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from labctl.inventory import load_inventory
from labctl.inventory.model import Inventory, Server
from labctl.power.restore import final_probes, plan_tiers, restore
from tests.conftest import FIXTURES, REFERENCE
from tests.labctl_process import run_labctl


@pytest.fixture(scope="module")
def inv() -> Inventory:
    inventory = load_inventory(REFERENCE).inventory
    assert inventory is not None
    return inventory


def _with_worker(inv: Inventory, name: str = "gust") -> Inventory:
    """The reference lab plus a worker-only server on pdu1's outlet 6."""
    wind = inv.server("wind")
    worker = dataclasses.replace(wind, name=name, roles=frozenset({"worker"}))
    pdu1 = inv.pdus[0]
    outlet = dataclasses.replace(pdu1.outlets[0], outlet=6, device=name)
    pdus = (dataclasses.replace(pdu1, outlets=(*pdu1.outlets, outlet)), *inv.pdus[1:])
    return dataclasses.replace(inv, servers=(*inv.servers, worker), pdus=pdus)


def test_switches_come_first_then_etcd_and_storage_then_the_rest(inv: Inventory) -> None:
    tiers = plan_tiers(_with_worker(inv), frozenset({"etcd", "ceph", "pki"}))
    assert [t.name for t in tiers] == ["switches", "storage and etcd members", "the rest"]
    switches, stateful, rest = tiers
    assert switches.devices == ("kek-core", "astrid", "tor")
    assert [str(o) for o in switches.outlets] == [
        "pdu1:4 (kek-core)",
        "pdu1:5 (astrid)",
        "pdu2:3 (tor)",
        "pdu2:4 (kek-core)",
        "pdu2:5 (astrid)",
    ]
    assert stateful.servers == ("fohn", "chequita", "wind")
    assert {o.device for o in stateful.outlets} == {"fohn", "chequita", "wind"}
    assert rest.servers == ("gust",) and [str(o) for o in rest.outlets] == ["pdu1:6 (gust)"]
    # Only the switches labctl talks to are asked; only bootstrapped layers are waited for.
    assert switches.probes == ("switches",)
    assert stateful.probes == ("servers", "etcd", "ceph-mon")
    assert rest.probes == ("servers",)


def test_layers_never_bootstrapped_are_not_waited_for(inv: Inventory) -> None:
    tiers = plan_tiers(inv)
    assert [t.name for t in tiers] == ["switches", "storage and etcd members"]  # no one else
    assert tiers[1].probes == ("servers",)
    assert final_probes(frozenset()) == ()
    assert final_probes(frozenset({"ceph", "etcd", "calico", "power"})) == ("etcd", "bgp", "ceph")


class FakeLab:
    """PDU outlets and BMCs: a server's BMC answers once an outlet feeding it is on;
    its power then stays off until asked (a BMC set to keep power off after a loss)."""

    def __init__(self, inv: Inventory, dead_outlets: Sequence[tuple[str, int]] = ()) -> None:
        self.outlets = {(p.name, o.outlet): "on" for p in inv.pdus for o in p.outlets}
        self.feeds = {
            s.name: [(p.name, o.outlet) for p in inv.pdus for o in p.outlets if o.device == s.name]
            for s in inv.servers
        }
        self.power = {s.name: "on" for s in inv.servers}
        self.dead = set(dead_outlets)
        self.log: list[tuple[float, str]] = []

    async def outlet_state(self, pdu: str, outlet: int) -> str:
        return self.outlets[(pdu, outlet)]

    async def set_outlet(self, pdu: str, outlet: int, on: bool) -> None:
        self.log.append((time.monotonic(), f"{pdu}:{outlet} {'on' if on else 'off'}"))
        if (pdu, outlet) not in self.dead:
            self.outlets[(pdu, outlet)] = "on" if on else "off"
        if not on:
            for name, feeds in self.feeds.items():
                if all(self.outlets[f] == "off" for f in feeds):
                    self.power[name] = "off"

    async def state(self, server: Server) -> str:
        from labctl.errors import DriverTimeout

        if all(self.outlets[f] == "off" for f in self.feeds[server.name]):
            raise DriverTimeout(f"{server.name} BMC: no answer")
        return self.power[server.name]

    async def power_on(self, server: Server) -> None:
        self.log.append((time.monotonic(), f"bmc {server.name} on"))
        self.power[server.name] = "on"


def _fast(inv: Inventory, stagger: str = "100ms") -> Inventory:
    return dataclasses.replace(
        inv, pdus=tuple(dataclasses.replace(p, stagger=stagger) for p in inv.pdus)
    )


def test_a_drill_cuts_everything_then_brings_tiers_back_in_order_and_staggered(
    inv: Inventory,
) -> None:
    lab_inv = _fast(inv)
    lab = FakeLab(lab_inv)
    asked: list[tuple[str, tuple[str, ...]]] = []

    def probe(name: str):  # type: ignore[no-untyped-def]
        def answer(devices: Sequence[str]) -> str | None:
            asked.append((name, tuple(devices)))
            return None

        return answer

    probes = {n: probe(n) for n in ("switches", "servers", "etcd", "ceph-mon", "etcd-final")}
    tiers = plan_tiers(lab_inv, frozenset({"etcd"}))
    report = asyncio.run(
        restore(lab_inv, tiers, lab, lab, probes, final=("etcd",), drill=True, poll=0.01)
    )
    assert report.ok, report.as_dict()
    events = [e for _, e in lab.log]
    cuts = [e for e in events if e.endswith(" off")]
    assert len(cuts) == 10 and events[:10] == cuts  # every outlet cut before anything
    ons = [e for e in events[10:] if e.endswith(" on") and not e.startswith("bmc")]
    switch_outlets = {"pdu1:4", "pdu1:5", "pdu2:3", "pdu2:4", "pdu2:5"}
    assert {e.split()[0] for e in ons[:5]} == switch_outlets  # switches before any server
    assert {e.split()[0] for e in ons[5:]} == {"pdu1:1", "pdu1:2", "pdu1:3", "pdu2:1", "pdu2:2"}
    # The BMCs kept power off: each server was powered on through its BMC, after its outlet.
    assert sorted(e for e in events if e.startswith("bmc")) == [
        "bmc chequita on",
        "bmc fohn on",
        "bmc wind on",
    ]
    # Outlets of one PDU a stagger apart, across tiers too; the two PDUs side by side.
    for pdu in ("pdu1", "pdu2"):
        times = [t for t, e in lab.log[10:] if e.startswith(pdu) and e.endswith(" on")]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert len(gaps) == 4 and all(gap >= 0.099 for gap in gaps), gaps
    assert abs(lab.log[10][0] - lab.log[11][0]) < 0.05  # pdu1 and pdu2 start together
    assert asked[0] == ("switches", ("kek-core", "astrid", "tor"))
    assert ("etcd", ("fohn", "chequita", "wind")) in asked
    assert [t.name for t in report.tiers] == ["switches", "storage and etcd members"]
    assert all(t.healthy is not None for t in report.tiers)
    said = [str(e["event"]) for e in report.timeline]
    assert said[0].startswith("drill: cut 10 outlets") and said[-1] == "every layer healthy"


def test_a_tier_that_never_gets_healthy_stops_the_run_within_its_bound(inv: Inventory) -> None:
    lab_inv = _fast(inv)
    lab = FakeLab(lab_inv)
    for key in lab.outlets:
        lab.outlets[key] = "off"
    for name in lab.power:
        lab.power[name] = "off"
    probes = {"switches": lambda devices: "kek-core: no answer on 10.31.0.2:22"}
    start = time.monotonic()
    report = asyncio.run(
        restore(lab_inv, plan_tiers(lab_inv), lab, lab, probes, tier_timeout=0.5, poll=0.05)
    )
    assert time.monotonic() - start < 2.0
    assert not report.ok
    assert report.tiers[0].problems == ["switches: kek-core: no answer on 10.31.0.2:22"]
    assert len(report.tiers) == 1  # no server outlet was switched on
    assert all(
        e.split()[0] in {"pdu1:4", "pdu1:5", "pdu2:3", "pdu2:4", "pdu2:5"} for _, e in lab.log
    )


def test_a_server_whose_bmc_never_answers_is_named(inv: Inventory) -> None:
    lab_inv = _fast(inv)
    lab = FakeLab(lab_inv, dead_outlets=[("pdu1", 3)])  # chequita's only outlet stays dark
    lab.outlets[("pdu1", 3)] = "off"
    probes = {"switches": lambda d: None, "servers": lambda d: None}
    report = asyncio.run(
        restore(lab_inv, plan_tiers(lab_inv), lab, lab, probes, tier_timeout=0.4, poll=0.05)
    )
    assert not report.ok
    assert report.tiers[1].problems == ["chequita: not on in time (chequita BMC: no answer)"]


def test_stagger_of_zero_or_negative_is_a_sentence_and_exit_2(tmp_path: Path) -> None:
    for name, words in (
        ("pdu-stagger-zero.yaml", "stagger 0s is zero"),
        ("pdu-stagger-negative.yaml", "pdus[0].stagger: is '-2s'"),
    ):
        (tmp_path / "inventory.yaml").write_text((FIXTURES / "bad" / name).read_text())
        done = run_labctl("power", "restore", "--dry-run", cwd=tmp_path)
        assert done.returncode == 2, done.stdout + done.stderr
        assert words in done.stderr and "inventory.yaml:22" in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / ".labctl").exists()  # nothing written
