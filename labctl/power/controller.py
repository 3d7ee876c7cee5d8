"""Servers' power controlled: one channel, its bounds, the quorum guard and one close.

``labctl power`` and the BMC applier of a bootstrap run both reach servers'
power through a ``PowerSession``, so the choice of channel (``--via``), the bound on
each device call, the guard before anything disruptive and the closing of
device sessions are decided here once, not by each caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from labctl.drivers.ipmi import BootDevice
from labctl.errors import LabctlError
from labctl.inventory.model import Inventory, Server
from labctl.power.channels import IpmiChannel, PduChannel
from labctl.power.requests import (
    DISRUPTIVE,
    PowerVerb,
    TargetResult,
    guard_quorum,
    power_on,
    read_state,
    run_power,
    soft_escalating,
)

if TYPE_CHECKING:  # the fabric is built by the caller (it needs the platform's answer)
    from labctl.calico.graceful import Fabric

TIMEOUT = 5.0  # seconds per device call (each call is retried twice inside the bound)
CYCLE_DELAY = 5.0  # seconds outlets stay off in a PDU cycle
SETTLE = 60.0  # seconds a server may take to reach the state it was asked for
ETCD_TIMEOUT = 2.0  # seconds per etcd member when the guard reads the cluster's health
CEPH_TIMEOUT = 10.0  # seconds per monitor when the guard reads Ceph's quorum
DRAIN_TIMEOUT = 30.0  # seconds the switches may take to move routes off a node
ESTABLISH_TIMEOUT = 120.0  # seconds a node's BGP sessions may take after power-on
SOFT_WAIT = 60.0  # seconds the OS may take to stop after a soft request, before a hard off


class PowerSession:
    """Servers' power through ``via`` (ipmi or pdu), for one command or one run.

    ``servers`` are the ones the caller may act on (the PDU channel refuses
    servers on no outlet up front); the guard reads every quorum member anyway.
    """

    def __init__(
        self,
        inventory: Inventory,
        base_dir: Path,
        *,
        via: str = "ipmi",
        servers: Sequence[Server] | None = None,
        timeout: float = TIMEOUT,
        cycle_delay: float = CYCLE_DELAY,
        graceful: Fabric | None = None,
        soft_wait: float = SOFT_WAIT,
        say: Callable[[str], None] = lambda _text: None,
    ) -> None:
        self.inventory = inventory
        self.base_dir = base_dir
        # The switches asked to stop preferring a node before it goes down (None: not asked).
        self.graceful = graceful
        self.soft_wait = soft_wait
        self.say = say
        self.said: list[str] = []  # what graceful power and a soft stop's escalation did
        self._timeout = timeout
        targets = list(servers if servers is not None else inventory.servers)
        self.channel: IpmiChannel | PduChannel
        if via == "pdu":
            self.channel = PduChannel(inventory, targets, base_dir, timeout, cycle_delay)
        else:
            self.channel = IpmiChannel(list(inventory.servers), base_dir, timeout)
        self.via = via
        # A call is retried twice inside the driver; a PDU cycle also waits out its delay.
        self.bound = timeout * 3 + 1 + (cycle_delay if via == "pdu" else 0)

    def check_secrets(self, servers: Sequence[Server] | None = None) -> None:
        """Fail now, naming the field, if a secret the channel needs is missing.

        The BMC passwords of ``servers`` (default: every server, as the quorum
        guard may read any member); the PDU channel resolved its own when built.
        """
        if isinstance(self.channel, IpmiChannel):
            self.channel.check_secrets(servers)

    async def refusals(self, servers: Sequence[Server]) -> list[str]:
        """Why taking ``servers`` down would lose an etcd or Ceph monitor quorum.

        Power states say which members are down; when the etcd cluster can be
        reached, its own health says which powered-on members are unwell too.
        """
        unwell: dict[str, dict[str, str]] = {}
        if any("etcd" in s.roles for s in servers):
            unwell["etcd"] = await asyncio.to_thread(self._etcd_unwell)
        if any("ceph-mon" in s.roles for s in servers):
            unwell["ceph-mon"] = await asyncio.to_thread(self._ceph_unwell)
        return await guard_quorum(self.inventory, self.channel, servers, self.bound, unwell)

    def _etcd_unwell(self) -> dict[str, str]:
        """etcd members that do not answer healthy, when any member answers at all.

        Without labctl's client certificate, or when no member answers (the cluster
        not formed yet, or not reachable from here), the guard goes by power alone.
        """
        from labctl.etcd.cluster import EtcdSession

        try:
            with EtcdSession(self.inventory, self.base_dir, timeout=ETCD_TIMEOUT) as etcd:
                return etcd.reachable_unhealthy() or {}
        except LabctlError:
            return {}

    def _ceph_unwell(self) -> dict[str, str]:
        """Monitors outside the live quorum, when any monitor answers at all.

        Before the cluster exists, or when no monitor answers (from here), the guard
        goes by power alone, as for etcd.
        """
        from labctl.ceph.cluster import CephSession

        if self.inventory.cluster.ceph is None:
            return {}
        try:
            with CephSession(self.inventory, self.base_dir, timeout=CEPH_TIMEOUT) as ceph:
                mons, quorum = ceph.quorum()
        except LabctlError:
            return {}
        return {m: "not in the monitors' quorum" for m in mons if m not in quorum}

    async def request(
        self,
        servers: Sequence[Server],
        verb: PowerVerb,
        *,
        force: bool = False,
        settle: float = SETTLE,
    ) -> list[TargetResult]:
        """``verb`` on every server in parallel, after the guard unless ``force``."""
        if verb in DISRUPTIVE and not force:
            refusals = await self.refusals(servers)
            if refusals:
                raise LabctlError(
                    "refused by the quorum guard:\n  "
                    + "\n  ".join(refusals)
                    + "\n(--force overrides)"
                )
        went_down = time.monotonic()
        if verb in DISRUPTIVE:
            await self._drain(servers)
            went_down = time.monotonic()
        if verb is PowerVerb.SOFT and isinstance(self.channel, IpmiChannel):
            results = await self._soft(servers, settle)
        else:
            results = await run_power(servers, verb, self.channel, bound=self.bound, settle=settle)
        if verb in (PowerVerb.ON, PowerVerb.CYCLE, PowerVerb.RESET):
            back = {r.server for r in results if r.ok}
            since = went_down if verb in DISRUPTIVE else None
            await self._call_back([s for s in servers if s.name in back], since)
        return results

    def _note(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.said.append(line)
            self.say(line)

    async def _drain(self, servers: Sequence[Server]) -> None:
        """Graceful shutdown on the switches for each server, one at a time (bounded)."""
        if self.graceful is None:
            return
        for server in servers:
            self._note(await asyncio.to_thread(self.graceful.drain, server, DRAIN_TIMEOUT))

    async def _call_back(self, servers: Sequence[Server], since: float | None = None) -> None:
        """Servers back on: once their sessions are Established (new ones, when the power
        went down at ``since``), the switches prefer them again."""
        if self.graceful is None or not servers:
            return
        fabric = self.graceful
        notes = await asyncio.gather(
            *(asyncio.to_thread(fabric.call_back, s, ESTABLISH_TIMEOUT, since) for s in servers)
        )
        for lines in notes:
            self._note(lines)

    async def _soft(self, servers: Sequence[Server], settle: float) -> list[TargetResult]:
        """A soft stop that escalates: the OS, then the BMC's hard off, then the outlets."""
        pdus: dict[str, PduChannel | None] = {}

        def pdu_channel() -> PduChannel | None:
            if "channel" not in pdus:
                fed = [
                    s
                    for s in servers
                    if any(o.device == s.name for p in self.inventory.pdus for o in p.outlets)
                ]
                try:
                    pdus["channel"] = (
                        PduChannel(self.inventory, fed, self.base_dir, self._timeout, 0.0)
                        if fed
                        else None
                    )
                except LabctlError as exc:
                    self._note([f"the PDUs cannot be used to cut power: {exc}"])
                    pdus["channel"] = None
            return pdus["channel"]

        def fed_channel(server: Server) -> PduChannel | None:
            channel = pdu_channel()
            if channel is None or not channel.feeds.get(server.name):
                return None
            return channel

        results = await asyncio.gather(
            *(
                soft_escalating(
                    s,
                    self.channel,
                    lambda s=s: fed_channel(s),  # type: ignore[misc]
                    bound=self.bound,
                    soft_wait=self.soft_wait,
                    settle=settle,
                    say=lambda text: self._note([text]),
                )
                for s in servers
            )
        )
        if "channel" in pdus and pdus["channel"] is not None:
            await pdus["channel"].close()
        return list(results)

    async def state(self, server: Server) -> str:
        return await read_state(server, self.channel, self.bound)

    async def ensure_on(self, server: Server, settle: float = SETTLE) -> bool:
        """Power ``server`` on unless it is; True when it was off."""
        was_off = await power_on(server, self.channel, bound=self.bound, settle=settle)
        await self._call_back([server])
        return was_off

    def _bmcs(self) -> IpmiChannel:
        if not isinstance(self.channel, IpmiChannel):
            raise LabctlError("the boot device is set through the BMC; use --via ipmi")
        return self.channel

    async def set_boot_device(self, server: Server, device: BootDevice, persistent: bool) -> None:
        await self._bmcs().set_boot_device(server, device, persistent)

    async def boot_device(self, server: Server) -> BootDevice:
        return await self._bmcs().boot_device(server)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> PowerSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
