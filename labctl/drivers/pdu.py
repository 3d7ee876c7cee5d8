"""PDU driver: switch outlets over SNMP (pysnmp 7, asyncio).

SNMPv3 authPriv (SHA / AES-128) is the default; v2c is allowed (the inventory
check LAB063 warns about it). Every request has a timeout and bounded retries
(pysnmp's own, per request); keys and communities never appear in messages.
What to read and write for a model comes from its profile (pdu_profiles.py).

pysnmp drops the socket's own errors (a refused port, a blackhole route) and
lets the request time out; our UDP transport (snmp.py) hands them to the client,
which fails the request at once with a sentence saying why (see neterrors.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any

from pysnmp.hlapi.v3arch import asyncio as snmp
from pysnmp.proto import rfc1902

from labctl.drivers.neterrors import Peer
from labctl.drivers.pdu_profiles import PduProfile
from labctl.drivers.snmp import (
    SnmpClient,
    SnmpV2cAuth,
    SnmpV3Auth,
)
from labctl.errors import DriverError


@dataclass(frozen=True)
class PduEndpoint:
    host: str
    auth: SnmpV3Auth | SnmpV2cAuth
    profile: PduProfile
    outlet_count: int
    port: int = 161
    timeout: float = 5.0
    retries: int = 2
    reboot_delay: float = 5.0
    name: str = ""

    @property
    def label(self) -> str:
        return (
            f"{self.name} ({self.host}:{self.port})"
            if self.name
            else f"PDU {self.host}:{self.port}"
        )

    @property
    def peer(self) -> Peer:
        return Peer(self.label, self.host, self.port, device="PDU", service="PDU's SNMP agent")


class OutletState(StrEnum):
    ON = "on"
    OFF = "off"


class OutletAction(StrEnum):
    ON = "on"
    OFF = "off"
    REBOOT = "reboot"


class PduClient(SnmpClient):
    """Talks to one PDU; one SNMP engine reused for every request."""

    device = "PDU"

    def __init__(self, endpoint: PduEndpoint) -> None:
        super().__init__(endpoint)
        self.endpoint = endpoint
        self._lock = asyncio.Lock()  # status-string writes are read-modify-write

    async def __aenter__(self) -> PduClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _check(
        self, error_indication: Any, error_status: Any, error_index: Any, oid: str, doing: str
    ) -> None:
        self._refused(error_indication, doing)
        if error_status and int(error_status) != 0:
            label = self.endpoint.label
            raise DriverError(f"{label}: the PDU refused {oid}: {error_status.prettyPrint()}")

    async def _get(self, oid: str, doing: str) -> Any:
        request = snmp.get_cmd(
            self._engine,
            self._auth_data(),
            await self._transport(doing),
            snmp.ContextData(),
            snmp.ObjectType(snmp.ObjectIdentity(oid)),
            lookupMib=False,
        )
        result = await self._exchange(request, doing)
        error_indication, error_status, error_index, var_binds = result
        self._check(error_indication, error_status, error_index, oid, doing)
        value = var_binds[0][1]
        if value.__class__.__name__ in ("NoSuchObject", "NoSuchInstance", "EndOfMibView"):
            raise DriverError(f"{self.endpoint.label}: the PDU has no {oid} (wrong profile?)")
        return value

    async def _set(self, oid: str, value: Any, doing: str) -> None:
        request = snmp.set_cmd(
            self._engine,
            self._auth_data(),
            await self._transport(doing),
            snmp.ContextData(),
            snmp.ObjectType(snmp.ObjectIdentity(oid), value),
            lookupMib=False,
        )
        result = await self._exchange(request, doing)
        error_indication, error_status, error_index, _ = result
        self._check(error_indication, error_status, error_index, oid, doing)

    def _outlet(self, outlet: int) -> None:
        if not 1 <= outlet <= self.endpoint.outlet_count:
            raise DriverError(
                f"{self.endpoint.label}: no outlet {outlet} (it has {self.endpoint.outlet_count})"
            )

    # -- status-string profiles --------------------------------------------

    async def _states_string(self, doing: str) -> list[str]:
        raw = await self._get(self.endpoint.profile.state_oid, doing)
        return str(raw).strip().split(",")

    # -- public --------------------------------------------------------------

    async def outlet_state(self, outlet: int) -> OutletState:
        self._outlet(outlet)
        profile = self.endpoint.profile
        doing = f"reading outlet {outlet}"
        if profile.kind == "status-string":
            states = await self._states_string(doing)
            if len(states) < outlet:
                raise DriverError(f"{self.endpoint.label}: status string has no outlet {outlet}")
            value = int(states[outlet - 1])
        else:
            value = int(await self._get(profile.oid(profile.state_oid, outlet), doing))
        if value == profile.state_on:
            return OutletState.ON
        if value == profile.state_off:
            return OutletState.OFF
        fault = profile.fault(value)
        if fault is not None:
            raise DriverError(f"{self.endpoint.label}: outlet {outlet} {fault} (state {value})")
        raise DriverError(f"{self.endpoint.label}: outlet {outlet} reports unknown state {value}")

    async def outlet_states(self, outlets: Sequence[int]) -> dict[int, OutletState]:
        states = await asyncio.gather(*(self.outlet_state(o) for o in outlets))
        return dict(zip(outlets, states, strict=True))

    async def set_outlet(self, outlet: int, action: OutletAction) -> None:
        self._outlet(outlet)
        profile = self.endpoint.profile
        if action is OutletAction.REBOOT and profile.reboot_value is None:
            await self.set_outlet(outlet, OutletAction.OFF)
            await asyncio.sleep(self.endpoint.reboot_delay)
            await self.set_outlet(outlet, OutletAction.ON)
            return
        value = {
            OutletAction.ON: profile.on_value,
            OutletAction.OFF: profile.off_value,
            OutletAction.REBOOT: profile.reboot_value,
        }[action]
        assert value is not None
        doing = f"switching outlet {outlet} {action}"
        if profile.kind == "status-string":
            async with self._lock:
                states = await self._states_string(doing)
                states[outlet - 1] = str(value)
                await self._set(profile.control_oid, rfc1902.OctetString(",".join(states)), doing)
        else:
            await self._set(profile.oid(profile.control_oid, outlet), rfc1902.Integer(value), doing)
