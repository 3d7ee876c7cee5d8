"""A switch's BGP4-MIB over SNMP (pysnmp 7, asyncio): walks whole tables for ``bgp status``.

Arista EOS, Edge-Core under SONiC (FRR's bgpd AgentX module behind snmpd) and
most routers serve RFC 4273's BGP4-MIB; reading it needs no login on the
switch, only read access to 1.3.6.1.2.1.15. This driver walks a subtree with
GETBULK and returns OID -> value, nothing more: what the rows mean is
``calico/bgp4_mib.py``'s business. SNMPv3 authPriv or v2c as the inventory's
switch says (``drivers/snmp.py``); every request has a timeout and bounded
retries, socket errors fail at once with a sentence, and no key or community
ever appears in a message.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pysnmp.hlapi.v3arch import asyncio as snmp

from labctl.drivers.neterrors import Peer
from labctl.drivers.snmp import (
    SnmpClient,
    SnmpV2cAuth,
    SnmpV3Auth,
)
from labctl.errors import DriverError

BGP4_MIB = "1.3.6.1.2.1.15"
PEER_TABLE = f"{BGP4_MIB}.3"  # bgpPeerTable
PATH_TABLE = f"{BGP4_MIB}.6"  # bgp4PathAttrTable

_END = ("EndOfMibView", "NoSuchObject", "NoSuchInstance")
_INTEGERS = ("Integer", "Integer32", "Counter32", "Gauge32", "Unsigned32", "TimeTicks")

Value = int | str


@dataclass(frozen=True)
class SwitchSnmpEndpoint:
    host: str
    auth: SnmpV3Auth | SnmpV2cAuth
    port: int = 161
    timeout: float = 5.0
    retries: int = 2
    name: str = ""
    max_repetitions: int = 50  # rows per GETBULK: one packet holds a small switch's peers

    @property
    def label(self) -> str:
        where = f"{self.host}:{self.port}"
        return f"{self.name} ({where})" if self.name else f"switch {where}"

    @property
    def peer(self) -> Peer:
        return Peer(self.label, self.host, self.port, "switch", "switch's SNMP agent")


def _plain(value: Any) -> Value:
    kind = type(value).__name__
    if kind in _INTEGERS:
        return int(value)
    return str(value.prettyPrint())  # IpAddress: dotted quad; OCTET STRING: 0x...


class BgpSnmpClient(SnmpClient):
    """Walks one switch's BGP4-MIB; one SNMP engine reused for every request."""

    device = "switch"

    def __init__(self, endpoint: SwitchSnmpEndpoint) -> None:
        super().__init__(endpoint)
        self.endpoint = endpoint

    async def __aenter__(self) -> BgpSnmpClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _check(self, error_indication: Any, error_status: Any, doing: str) -> None:
        self._refused(error_indication, doing)
        if error_status and int(error_status) != 0:
            raise DriverError(
                f"{self.endpoint.label}: {doing}: the agent said {error_status.prettyPrint()}"
            )

    async def walk(self, subtree: str) -> dict[str, Value]:
        """Every OID under ``subtree`` (dotted, no leading dot) -> its value."""
        doing = f"walking {subtree}"
        prefix = subtree + "."
        out: dict[str, Value] = {}
        cursor = subtree
        while True:
            request = snmp.bulk_cmd(
                self._engine,
                self._auth_data(),
                await self._transport(doing),
                snmp.ContextData(),
                0,
                self.endpoint.max_repetitions,
                snmp.ObjectType(snmp.ObjectIdentity(cursor)),
                lookupMib=False,
            )
            error_indication, error_status, _, var_binds = await self._exchange(request, doing)
            self._check(error_indication, error_status, doing)
            if not var_binds:
                return out
            for name, value in var_binds:
                oid = str(name)
                if not oid.startswith(prefix) or type(value).__name__ in _END:
                    return out
                if oid in out:  # an agent that does not move on: stop rather than loop
                    raise DriverError(f"{self.endpoint.label}: {doing}: the agent repeats {oid}")
                out[oid] = _plain(value)
                cursor = oid

    async def bgp(self) -> dict[str, Value]:
        """bgpPeerTable and bgp4PathAttrTable, walked at once."""
        peers, paths = await asyncio.gather(self.walk(PEER_TABLE), self.walk(PATH_TABLE))
        return {**peers, **paths}


def read_bgp(endpoint: SwitchSnmpEndpoint) -> dict[str, Value]:
    """The switch's BGP4-MIB session and path rows (for callers without an event loop)."""

    async def read() -> dict[str, Value]:
        async with BgpSnmpClient(endpoint) as client:
            return await client.bgp()

    return asyncio.run(read())
