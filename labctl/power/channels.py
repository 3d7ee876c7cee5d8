"""Power channels built from the inventory: servers' BMCs (IPMI or Redfish) or PDU outlets (SNMP).

A channel is one way of reaching servers' power (``labctl power --via``). The
PDU channel resolves its secrets when it is built; the BMC channel (``--via ipmi``,
which drives each BMC in the protocol its ``bmc.type`` says) resolves a
server's BMC password when that server is first reached, so a bootstrap run
with one password missing fails that server alone, while ``labctl power``
calls ``check_secrets`` first and fails cleanly before any packet is sent.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from labctl.drivers.ipmi import BmcEndpoint, BootDevice, IpmiClient, PowerAction
from labctl.drivers.pdu_profiles import profile_for
from labctl.drivers.redfish import RedfishClient, RedfishEndpoint
from labctl.errors import LabctlError, UsageError
from labctl.inventory.model import Inventory, Server
from labctl.inventory.problems import format_path
from labctl.power.requests import PowerVerb
from labctl.secrets.references import resolve

if TYPE_CHECKING:  # pysnmp takes a tenth of a second to import: only --via pdu pays for it
    from labctl.drivers.pdu import PduClient, PduEndpoint

T = TypeVar("T")
BmcClient = IpmiClient | RedfishClient


def bmc_endpoint(server: Server, base_dir: Path, timeout: float) -> BmcEndpoint | RedfishEndpoint:
    bmc = server.bmc
    password = resolve(
        bmc.password, used_at=format_path((*bmc.path, "password")), base_dir=base_dir
    )
    if bmc.redfish:
        verify: bool | str = bmc.verify
        if bmc.verify and bmc.ca_file is not None:
            verify = str(base_dir / bmc.ca_file)
        return RedfishEndpoint(
            host=bmc.address,
            port=bmc.port,
            scheme=bmc.scheme,
            username=bmc.username,
            password=password,
            verify=verify,
            system=bmc.system,
            timeout=timeout,
            name=server.name,
            boot_mode=bmc.boot_mode if "boot_mode" in bmc.given else None,
        )
    return BmcEndpoint(
        host=bmc.address,
        port=bmc.port,
        username=bmc.username,
        password=password,
        cipher_suites=bmc.cipher_suites,
        allow_insecure=bmc.allow_insecure,
        timeout=timeout,
        name=server.name,
        boot_mode=bmc.boot_mode,
    )


class IpmiChannel:
    """Servers' power through their BMCs; one cached session per BMC, in a thread pool.

    Each BMC is driven in its own protocol: IPMI (types ipmi, ilo) or Redfish.
    """

    name = "ipmi"

    def __init__(self, servers: list[Server], base_dir: Path, timeout: float) -> None:
        self._servers = {s.name: s for s in servers}
        self._base_dir = base_dir
        self._timeout = timeout
        self._endpoints: dict[str, BmcEndpoint | RedfishEndpoint] = {}
        self._clients: dict[str, BmcClient] = {}
        self._locks = {name: threading.Lock() for name in self._servers}
        # One thread per BMC: the calls block on the network, not the CPU.
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(64, len(self._servers))))

    def endpoint(self, name: str) -> BmcEndpoint | RedfishEndpoint:
        """The server's BMC, its password resolved (SecretError, naming the field, if not)."""
        if name not in self._endpoints:
            self._endpoints[name] = bmc_endpoint(self._servers[name], self._base_dir, self._timeout)
        return self._endpoints[name]

    def check_secrets(self, servers: Sequence[Server] | None = None) -> None:
        """Resolve these BMC passwords (all by default) now, so a missing one fails first."""
        for name in [s.name for s in servers] if servers is not None else self._servers:
            self.endpoint(name)

    async def _call(self, server: Server, fn: Callable[[BmcClient], T]) -> T:
        def work() -> T:
            with self._locks[server.name]:
                client = self._clients.get(server.name)
                if client is None:
                    endpoint = self.endpoint(server.name)
                    client = (
                        RedfishClient(endpoint)
                        if isinstance(endpoint, RedfishEndpoint)
                        else IpmiClient(endpoint)
                    )
                    self._clients[server.name] = client
                try:
                    return fn(client)
                except LabctlError:
                    client.close()
                    self._clients.pop(server.name, None)
                    raise

        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    async def state(self, server: Server) -> str:
        return str(await self._call(server, lambda c: c.power_state().value))

    async def act(self, server: Server, verb: PowerVerb) -> None:
        await self._call(server, lambda c: c.power(PowerAction(verb.value)))

    async def power_on(self, server: Server) -> None:
        await self.act(server, PowerVerb.ON)

    async def set_boot_device(self, server: Server, device: BootDevice, persistent: bool) -> None:
        await self._call(server, lambda c: c.set_boot_device(device, persistent))

    async def boot_device(self, server: Server) -> BootDevice:
        return (await self._call(server, lambda c: c.boot_device()))[0]

    async def close(self) -> None:
        # Close sessions in parallel: each close is a round trip to its BMC, and
        # 50 of them in a row cost more than the whole status query.
        await asyncio.gather(
            *(
                asyncio.get_running_loop().run_in_executor(self._pool, client.close)
                for client in self._clients.values()
            )
        )
        self._clients.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)


def pdu_endpoints(inventory: Inventory, base_dir: Path, timeout: float) -> dict[str, PduEndpoint]:
    from labctl.drivers.pdu import PduEndpoint
    from labctl.snmp_credentials import credentials

    endpoints = {}
    for pdu in inventory.pdus:
        snmp = pdu.snmp
        auth = credentials(snmp, format_path((*pdu.path, "snmp")), base_dir)
        endpoints[pdu.name] = PduEndpoint(
            host=pdu.address,
            port=snmp.port,
            auth=auth,
            profile=profile_for(pdu.profile, pdu.custom_profile),
            outlet_count=pdu.outlet_count,
            timeout=timeout,
            name=pdu.name,
        )
    return endpoints


class PduChannel:
    """Servers' power through the PDU outlets feeding their power supplies.

    A server is on while any of its outlets is on; off cuts all of them; a
    cycle cuts all, waits ``cycle_delay`` and switches all back on.
    """

    name = "pdu"

    def __init__(
        self,
        inventory: Inventory,
        servers: list[Server],
        base_dir: Path,
        timeout: float,
        cycle_delay: float,
    ) -> None:
        # Every server's feeds, not only the targets': the quorum guard reads them all.
        self.feeds: dict[str, list[tuple[str, int]]] = {s.name: [] for s in inventory.servers}
        for pdu in inventory.pdus:
            for outlet in pdu.outlets:
                if outlet.device in self.feeds:
                    self.feeds[outlet.device].append((pdu.name, outlet.outlet))
        unfed = [s.name for s in servers if not self.feeds[s.name]]
        if unfed:
            raise UsageError(
                f"{', '.join(unfed)}: on no PDU outlet in the inventory; use --via ipmi"
            )
        self.endpoints = pdu_endpoints(inventory, base_dir, timeout)
        self.cycle_delay = cycle_delay
        self._clients: dict[str, PduClient] = {}

    def _client(self, pdu: str) -> PduClient:
        from labctl.drivers.pdu import PduClient

        if pdu not in self._clients:
            self._clients[pdu] = PduClient(self.endpoints[pdu])
        return self._clients[pdu]

    async def state(self, server: Server) -> str:
        from labctl.drivers.pdu import OutletState

        if not self.feeds[server.name]:
            raise LabctlError(f"{server.name} is on no PDU outlet; its power cannot be read there")
        states = await asyncio.gather(
            *(self._client(pdu).outlet_state(outlet) for pdu, outlet in self.feeds[server.name])
        )
        return "on" if OutletState.ON in states else "off"

    async def _switch(self, server: Server, action: str) -> None:
        from labctl.drivers.pdu import OutletAction

        await asyncio.gather(
            *(
                self._client(pdu).set_outlet(outlet, OutletAction(action))
                for pdu, outlet in self.feeds[server.name]
            )
        )

    async def outlet_state(self, pdu: str, outlet: int) -> str:
        """One outlet's state, ``on`` or ``off`` (a cold start reads each before it acts)."""
        from labctl.drivers.pdu import OutletState

        state = await self._client(pdu).outlet_state(outlet)
        return "on" if state is OutletState.ON else "off"

    async def set_outlet(self, pdu: str, outlet: int, on: bool) -> None:
        from labctl.drivers.pdu import OutletAction

        await self._client(pdu).set_outlet(outlet, OutletAction.ON if on else OutletAction.OFF)

    async def act(self, server: Server, verb: PowerVerb) -> None:
        if verb is PowerVerb.ON:
            await self._switch(server, "on")
        elif verb is PowerVerb.OFF:
            await self._switch(server, "off")
        elif verb in (PowerVerb.CYCLE, PowerVerb.RESET):
            await self._switch(server, "off")
            await asyncio.sleep(self.cycle_delay)
            await self._switch(server, "on")
        else:
            raise UsageError(f"{verb} is not possible through a PDU (it cannot ask the OS)")

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
