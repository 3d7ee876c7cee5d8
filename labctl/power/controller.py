"""Servers' power controlled: one channel, its bounds, the quorum guard and one close.

``labctl power`` and the BMC applier of a bootstrap run both reach servers'
power through a ``PowerSession``, so the choice of channel (``--via``), the bound on
each device call, the guard before anything disruptive and the closing of
device sessions are decided here once, not by each caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

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
)

TIMEOUT = 5.0  # seconds per device call (each call is retried twice inside the bound)
CYCLE_DELAY = 5.0  # seconds outlets stay off in a PDU cycle
SETTLE = 60.0  # seconds a server may take to reach the state it was asked for
ETCD_TIMEOUT = 2.0  # seconds per etcd member when the guard reads the cluster's health
CEPH_TIMEOUT = 10.0  # seconds per monitor when the guard reads Ceph's quorum


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
    ) -> None:
        self.inventory = inventory
        self.base_dir = base_dir
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
        return await run_power(servers, verb, self.channel, bound=self.bound, settle=settle)

    async def state(self, server: Server) -> str:
        return await read_state(server, self.channel, self.bound)

    async def ensure_on(self, server: Server, settle: float = SETTLE) -> bool:
        """Power ``server`` on unless it is; True when it was off."""
        return await power_on(server, self.channel, bound=self.bound, settle=settle)

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
