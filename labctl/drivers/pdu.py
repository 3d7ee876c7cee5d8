"""PDU driver: switch outlets over SNMP (pysnmp 7, asyncio).

SNMPv3 authPriv (SHA / AES-128) is the default; v2c is allowed (the inventory
check LAB063 warns about it). Every request has a timeout and bounded retries
(pysnmp's own, per request); keys and communities never appear in messages.
What to read and write for a model comes from its profile (pdu_profiles.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any

from pysnmp.hlapi.v3arch import asyncio as snmp
from pysnmp.proto import rfc1902

from labctl.drivers.pdu_profiles import PduProfile
from labctl.errors import AuthenticationError, DriverError, DriverTimeout

_AUTH = {
    "sha": snmp.usmHMACSHAAuthProtocol,
    "sha256": snmp.usmHMAC192SHA256AuthProtocol,
    "md5": snmp.usmHMACMD5AuthProtocol,
}
_PRIV = {
    "aes": snmp.usmAesCfb128Protocol,
    "aes256": snmp.usmAesCfb256Protocol,
    "des": snmp.usmDESPrivProtocol,
}
# pysnmp error indications that mean "your credentials are wrong".
_AUTH_FAILURES = {
    "WrongDigest",
    "UnknownUserName",
    "DecryptionError",
    "AuthenticationFailure",
    "UnsupportedSecurityLevel",
}


@dataclass(frozen=True)
class SnmpV3Auth:
    username: str
    auth_key: str = field(repr=False)
    priv_key: str = field(repr=False)
    auth_protocol: str = "sha"
    priv_protocol: str = "aes"


@dataclass(frozen=True)
class SnmpV2cAuth:
    community: str = field(repr=False)


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


class OutletState(StrEnum):
    ON = "on"
    OFF = "off"


class OutletAction(StrEnum):
    ON = "on"
    OFF = "off"
    REBOOT = "reboot"


class PduClient:
    """Talks to one PDU; one SNMP engine reused for every request."""

    def __init__(self, endpoint: PduEndpoint) -> None:
        self.endpoint = endpoint
        self._engine = snmp.SnmpEngine()
        self._target: Any = None
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

    async def close(self) -> None:
        self._engine.close_dispatcher()

    def _auth_data(self) -> Any:
        auth = self.endpoint.auth
        if isinstance(auth, SnmpV2cAuth):
            return snmp.CommunityData(auth.community, mpModel=1)
        return snmp.UsmUserData(
            auth.username,
            authKey=auth.auth_key,
            privKey=auth.priv_key,
            authProtocol=_AUTH[auth.auth_protocol],
            privProtocol=_PRIV[auth.priv_protocol],
        )

    async def _transport(self) -> Any:
        if self._target is None:
            ep = self.endpoint
            self._target = await snmp.UdpTransportTarget.create(
                (ep.host, ep.port), timeout=ep.timeout, retries=ep.retries
            )
        return self._target

    def _check(self, error_indication: Any, error_status: Any, error_index: Any, oid: str) -> None:
        label = self.endpoint.label
        if error_indication:
            kind = type(error_indication).__name__
            if kind == "RequestTimedOut":
                total = self.endpoint.timeout * (self.endpoint.retries + 1)
                raise DriverTimeout(f"{label}: no SNMP answer within {total:g} s")
            if kind in _AUTH_FAILURES:
                raise AuthenticationError(f"{label}: SNMP credentials refused ({kind})")
            raise DriverError(f"{label}: SNMP error: {error_indication}")
        if error_status and int(error_status) != 0:
            raise DriverError(f"{label}: the PDU refused {oid}: {error_status.prettyPrint()}")

    async def _get(self, oid: str) -> Any:
        result = await snmp.get_cmd(
            self._engine,
            self._auth_data(),
            await self._transport(),
            snmp.ContextData(),
            snmp.ObjectType(snmp.ObjectIdentity(oid)),
            lookupMib=False,
        )
        error_indication, error_status, error_index, var_binds = result
        self._check(error_indication, error_status, error_index, oid)
        value = var_binds[0][1]
        if value.__class__.__name__ in ("NoSuchObject", "NoSuchInstance", "EndOfMibView"):
            raise DriverError(f"{self.endpoint.label}: the PDU has no {oid} (wrong profile?)")
        return value

    async def _set(self, oid: str, value: Any) -> None:
        result = await snmp.set_cmd(
            self._engine,
            self._auth_data(),
            await self._transport(),
            snmp.ContextData(),
            snmp.ObjectType(snmp.ObjectIdentity(oid), value),
            lookupMib=False,
        )
        error_indication, error_status, error_index, _ = result
        self._check(error_indication, error_status, error_index, oid)

    def _outlet(self, outlet: int) -> None:
        if not 1 <= outlet <= self.endpoint.outlet_count:
            raise DriverError(
                f"{self.endpoint.label}: no outlet {outlet} (it has {self.endpoint.outlet_count})"
            )

    # -- status-string profiles --------------------------------------------

    async def _states_string(self) -> list[str]:
        raw = await self._get(self.endpoint.profile.state_oid)
        return str(raw).strip().split(",")

    # -- public --------------------------------------------------------------

    async def outlet_state(self, outlet: int) -> OutletState:
        self._outlet(outlet)
        profile = self.endpoint.profile
        if profile.kind == "status-string":
            states = await self._states_string()
            if len(states) < outlet:
                raise DriverError(f"{self.endpoint.label}: status string has no outlet {outlet}")
            value = int(states[outlet - 1])
        else:
            value = int(await self._get(profile.oid(profile.state_oid, outlet)))
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
        if profile.kind == "status-string":
            async with self._lock:
                states = await self._states_string()
                states[outlet - 1] = str(value)
                await self._set(profile.control_oid, rfc1902.OctetString(",".join(states)))
        else:
            await self._set(profile.oid(profile.control_oid, outlet), rfc1902.Integer(value))
