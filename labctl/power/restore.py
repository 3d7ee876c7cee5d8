"""A cold start (``labctl power restore``): outlets back in dependency order, tier by tier.

After a site-wide outage everything comes back at once unless someone chooses
the order: servers that boot before their switches lose their DHCP and their BGP
sessions, etcd members that boot one by one wait out their election timeouts,
OSDs that boot before the monitors retry until they give up. The inventory says
what depends on what (which device a PDU outlet feeds, which servers hold etcd and
Ceph roles), so the order is derived, not written: ``plan_tiers`` is pure (the
inventory in, tiers out) and ``restore`` carries a plan out through narrow
protocols (outlets, servers' power, named health probes), so the order, the
stagger, the waits and the timeline are tested with fakes and proven on the
simulated lab with the real PDUs, BMCs, etcd and FRR.

A tier's outlets are switched on one at a time per PDU (``pdus[].stagger`` after
the last one that PDU switched, in this tier or the one before, so inrush currents
do not add up; different PDUs in parallel); then its
servers' BMCs are asked and a server still off is powered on (a BMC's "restore
last state" policy may keep it off); then labctl waits, bounded, until every
health probe of the tier answers before it starts the next tier.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from labctl.errors import LabctlError
from labctl.inventory import topology
from labctl.inventory.checks import duration_seconds
from labctl.inventory.model import Inventory, Server

# Roles whose servers come back before the rest: the cluster's state lives on them.
STATEFUL_ROLES = frozenset({"etcd", "ceph-mon", "ceph-osd"})
SWITCHES, STATEFUL, REST = "switches", "storage and etcd members", "the rest"


@dataclass(frozen=True)
class OutletStep:
    pdu: str
    outlet: int
    device: str

    def __str__(self) -> str:
        return f"{self.pdu}:{self.outlet} ({self.device})"


@dataclass(frozen=True)
class Tier:
    """Devices that come back together, and what must answer before the next tier."""

    name: str
    devices: tuple[str, ...]
    servers: tuple[str, ...]  # the tier's devices that are servers (their BMCs are asked)
    outlets: tuple[OutletStep, ...]  # by PDU, then outlet number
    probes: tuple[str, ...]  # health probes that must answer (names of ``Probes``)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "devices": list(self.devices),
            "outlets": [
                {"pdu": o.pdu, "outlet": o.outlet, "device": o.device} for o in self.outlets
            ],
            "probes": list(self.probes),
        }


def plan_tiers(inventory: Inventory, applied_layers: frozenset[str] = frozenset()) -> list[Tier]:
    """The order a cold start brings the lab back in, as tiers (empty tiers left out).

    Switches first (every switch in the inventory, and anything else on an outlet
    that is not a server); then the servers holding etcd, Ceph monitors or OSDs;
    then every other server. ``applied_layers`` (the journal's) say which layers'
    health is asked: a layer never bootstrapped is not waited for.
    """
    servers = {s.name: s for s in inventory.servers}
    switches = {s.name for s in inventory.switches}

    def tier_of(device: str) -> str:
        server = servers.get(device)
        if server is None:
            return SWITCHES
        return STATEFUL if server.roles & STATEFUL_ROLES else REST

    outlets: dict[str, list[OutletStep]] = {SWITCHES: [], STATEFUL: [], REST: []}
    for pdu in inventory.pdus:
        for outlet in sorted(pdu.outlets, key=lambda o: o.outlet):
            outlets[tier_of(outlet.device)].append(
                OutletStep(pdu.name, outlet.outlet, outlet.device)
            )
    devices: dict[str, list[str]] = {
        SWITCHES: [s.name for s in inventory.switches],
        STATEFUL: [s.name for s in inventory.servers if tier_of(s.name) == STATEFUL],
        REST: [s.name for s in inventory.servers if tier_of(s.name) == REST],
    }
    for step in outlets[SWITCHES]:  # a device on an outlet that is neither (LAB-checked)
        if step.device not in devices[SWITCHES] and step.device not in switches:
            devices[SWITCHES].append(step.device)

    def probes(name: str) -> tuple[str, ...]:
        if name == SWITCHES:
            return ("switches",) if topology.peering_switches(inventory) else ()
        found = ["servers"]
        members = {r for s in devices[name] for r in servers[s].roles}
        if name == STATEFUL and "etcd" in applied_layers and "etcd" in members:
            found.append("etcd")
        if name == STATEFUL and "ceph" in applied_layers and "ceph-mon" in members:
            found.append("ceph-mon")
        return tuple(found)

    tiers = [
        Tier(
            name,
            tuple(devices[name]),
            tuple(d for d in devices[name] if d in servers),
            tuple(outlets[name]),
            probes(name),
        )
        for name in (SWITCHES, STATEFUL, REST)
        if devices[name] or outlets[name]
    ]
    return tiers


def final_probes(applied_layers: frozenset[str]) -> tuple[str, ...]:
    """Layers asked once every tier is up: each bootstrapped layer's own health."""
    order = (("etcd", "etcd"), ("kubernetes", "kubernetes"), ("calico", "bgp"), ("ceph", "ceph"))
    return tuple(probe for layer, probe in order if layer in applied_layers)


class Outlets(Protocol):
    """PDU outlets, by PDU name and outlet number."""

    async def outlet_state(self, pdu: str, outlet: int) -> str: ...

    async def set_outlet(self, pdu: str, outlet: int, on: bool) -> None: ...


class ServerPower(Protocol):
    """Servers' power through their BMCs."""

    async def state(self, server: Server) -> str: ...

    async def power_on(self, server: Server) -> None: ...


# A probe answers None when healthy, else a sentence saying what is not (never raises).
Probe = Callable[[Sequence[str]], str | None]
Probes = Mapping[str, Probe]


@dataclass
class Timeline:
    """What happened when, in seconds from the first outlet switched (kept as JSON)."""

    start: float = field(default_factory=time.monotonic)
    events: list[dict[str, object]] = field(default_factory=list)
    say: Callable[[str], None] = lambda _text: None

    def note(self, what: str, tier: str | None = None, **extra: object) -> None:
        at = round(time.monotonic() - self.start, 2)
        self.events.append({"at": at, "tier": tier, "event": what, **extra})
        self.say(f"{at:7.1f}s  {what}")


@dataclass
class TierResult:
    name: str
    started: float
    powered: float | None = None  # every outlet on, every server powered
    healthy: float | None = None  # every probe answered
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__, ok=not self.problems)


@dataclass
class RestoreReport:
    tiers: list[TierResult]
    timeline: list[dict[str, object]]
    seconds: float
    drill: bool
    final: list[str]  # the final probes' problems (empty: every layer healthy)

    @property
    def ok(self) -> bool:
        return not self.final and all(not t.problems for t in self.tiers)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "drill": self.drill,
            "seconds": round(self.seconds, 2),
            "tiers": [t.as_dict() for t in self.tiers],
            "problems": self.final,
            "timeline": self.timeline,
        }


async def cut_everything(inventory: Inventory, outlets: Outlets, timeline: Timeline) -> None:
    """The drill's outage: every outlet in the inventory off at once."""
    steps = [(p.name, o.outlet, o.device) for p in inventory.pdus for o in p.outlets]
    await asyncio.gather(*(outlets.set_outlet(pdu, n, False) for pdu, n, _ in steps))
    timeline.note(f"drill: cut {len(steps)} outlets on {len(inventory.pdus)} PDUs")


async def _switch_on(
    tier: Tier,
    outlets: Outlets,
    staggers: Mapping[str, float],
    last_on: dict[str, float],
    timeline: Timeline,
) -> None:
    """The tier's outlets on, each PDU's a stagger after the last it switched (any tier)."""
    by_pdu: dict[str, list[OutletStep]] = {}
    for step in tier.outlets:
        by_pdu.setdefault(step.pdu, []).append(step)

    async def one_pdu(steps: list[OutletStep]) -> None:
        for step in steps:
            if await outlets.outlet_state(step.pdu, step.outlet) == "on":
                timeline.note(f"outlet {step} already on", tier.name)
                continue
            if step.pdu in last_on:
                await asyncio.sleep(
                    max(0.0, last_on[step.pdu] + staggers[step.pdu] - time.monotonic())
                )
            await outlets.set_outlet(step.pdu, step.outlet, True)
            last_on[step.pdu] = time.monotonic()
            timeline.note(f"outlet {step} on", tier.name)

    await asyncio.gather(*(one_pdu(steps) for steps in by_pdu.values()))


async def _power_servers(
    tier: Tier,
    servers: Mapping[str, Server],
    power: ServerPower,
    deadline: float,
    poll: float,
    timeline: Timeline,
) -> list[str]:
    """Every server of the tier on, through its BMC once the BMC answers; problems."""

    async def one(name: str) -> str | None:
        server = servers[name]
        last = "no answer yet"
        asked = False
        while True:
            try:
                state = await power.state(server)
                if state == "on":
                    timeline.note(f"{name} is on", tier.name)
                    return None
                if not asked:
                    await power.power_on(server)
                    asked = True
                    timeline.note(f"{name}: BMC answers, power was off: powered on", tier.name)
                last = f"power is {state}"
            except LabctlError as exc:
                last = str(exc)
            if time.monotonic() >= deadline:
                return f"{name}: not on in time ({last})"
            await asyncio.sleep(poll)

    found = await asyncio.gather(*(one(name) for name in tier.servers))
    return [p for p in found if p is not None]


async def _wait_probes(
    names: Sequence[str],
    devices: Sequence[str],
    probes: Probes,
    deadline: float,
    poll: float,
    timeline: Timeline,
    tier: str | None,
) -> list[str]:
    """Poll every named probe until each answers healthy or the deadline passes."""
    waiting = list(names)
    last: dict[str, str] = {}
    while True:
        answers = await asyncio.gather(
            *(asyncio.to_thread(probes[name], devices) for name in waiting)
        )
        for name, answer in zip(list(waiting), answers, strict=True):
            if answer is None:
                waiting.remove(name)
                timeline.note(f"healthy: {name}", tier)
            else:
                last[name] = answer
        if not waiting:
            return []
        if time.monotonic() >= deadline:
            return [f"{name}: {last[name]}" for name in waiting]
        await asyncio.sleep(poll)


async def restore(
    inventory: Inventory,
    tiers: Sequence[Tier],
    outlets: Outlets,
    power: ServerPower,
    probes: Probes,
    *,
    final: Sequence[str] = (),
    drill: bool = False,
    tier_timeout: float = 300.0,
    poll: float = 1.0,
    timeline: Timeline | None = None,
) -> RestoreReport:
    """Bring the lab back tier by tier; a tier that is not healthy in time stops the run.

    ``tier_timeout`` bounds each tier (power and probes together) and the final
    probes. Every step is noted on the timeline, whose ``say`` shows progress.
    """
    line = timeline or Timeline()
    staggers = {p.name: duration_seconds(p.stagger) for p in inventory.pdus}
    servers = {s.name: s for s in inventory.servers}
    if drill:
        await cut_everything(inventory, outlets, line)
        line.start = time.monotonic()  # the timeline runs from power back, not the cut
        line.events[-1]["at"] = 0.0
    results: list[TierResult] = []
    every_device: list[str] = []
    last_on: dict[str, float] = {}  # when each PDU last switched an outlet on
    for tier in tiers:
        result = TierResult(tier.name, round(time.monotonic() - line.start, 2))
        results.append(result)
        line.note(f"tier {tier.name}: {', '.join(tier.devices) or 'nothing'}", tier.name)
        deadline = time.monotonic() + tier_timeout
        try:
            await _switch_on(tier, outlets, staggers, last_on, line)
        except LabctlError as exc:
            result.problems.append(str(exc))
            break
        result.problems += await _power_servers(tier, servers, power, deadline, poll, line)
        result.powered = round(time.monotonic() - line.start, 2)
        every_device += tier.devices
        if not result.problems:
            result.problems += await _wait_probes(
                tier.probes, tier.devices, probes, deadline, poll, line, tier.name
            )
        if result.problems:
            line.note(f"tier {tier.name} is not healthy: {'; '.join(result.problems)}", tier.name)
            break
        result.healthy = round(time.monotonic() - line.start, 2)
        line.note(f"tier {tier.name} healthy", tier.name)
    problems: list[str] = []
    if all(not r.problems for r in results) and len(results) == len(tiers):
        deadline = time.monotonic() + tier_timeout
        problems = await _wait_probes(final, every_device, probes, deadline, poll, line, None)
        if not problems:
            line.note("every layer healthy")
    else:
        problems = ["stopped before every tier was back"]
    return RestoreReport(results, line.events, time.monotonic() - line.start, drill, problems)
