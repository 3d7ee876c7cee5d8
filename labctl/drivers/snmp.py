"""What every SNMP driver of labctl shares: credentials, pysnmp forms, a reporting UDP target.

The PDU driver (outlets) and the BGP4-MIB driver (switch sessions) talk to
different agents about different tables, but ask the same way: SNMPv3 authPriv
or v2c, keys and communities never in a message or a repr, and a UDP transport
that hands the socket's own errors (a refused port, a blackhole route) to the
client instead of letting pysnmp time out on them (see neterrors.py).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.carrier.error import CarrierError
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch import asyncio as snmp

from labctl.drivers.neterrors import Peer, network_error
from labctl.errors import AuthenticationError, DriverError

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
# What each SNMPv3 refusal (pysnmp's error indication) means, in the words an operator acts on.
AUTH_FAILURES = {
    "WrongDigest": "the authentication key is wrong (the agent's digest does not match)",
    "UnknownUserName": "the agent has no such SNMPv3 user",
    "DecryptionError": "the privacy (encryption) key is wrong",
    "AuthenticationFailure": "the credentials are wrong",
    "UnsupportedSecurityLevel": "the agent does not offer the security level asked for",
}
# Linux queues ICMP errors (port unreachable, host unreachable) for unconnected UDP
# sockets only with this option; Python names it from 3.12 on.
_IP_RECVERR = getattr(socket, "IP_RECVERR", 11)


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


def auth_data(auth: SnmpV3Auth | SnmpV2cAuth) -> Any:
    """pysnmp's form of the credentials (v2c community or v3 authPriv user)."""
    if isinstance(auth, SnmpV2cAuth):
        return snmp.CommunityData(auth.community, mpModel=1)
    return snmp.UsmUserData(
        auth.username,
        authKey=auth.auth_key,
        privKey=auth.priv_key,
        authProtocol=_AUTH[auth.auth_protocol],
        privProtocol=_PRIV[auth.priv_protocol],
    )


class _ReportingUdp(udp.UdpAsyncioTransport):  # type: ignore[misc]
    """pysnmp's UDP transport, telling ``report`` every error its socket gets."""

    def __init__(self, report: Callable[[OSError], None]) -> None:
        super().__init__()
        self._report = report

    def connection_made(self, transport: asyncio.DatagramTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:  # before pysnmp sends what it queued
            sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
        super().connection_made(transport)

    def error_received(self, exc: OSError) -> None:
        self._report(exc)

    # pysnmp hands a datagram to the dispatcher on the loop's next turn. An answer that
    # arrives as the client closes (a retry's, after the first answer or the agent's
    # refusal ended the request) then reaches a dispatcher that has let the transport go,
    # which raises, and asyncio prints that as a traceback on the operator's terminal
    # (seen with a wrong PDU key). A datagram for a closed transport is dropped instead.
    def datagram_received(self, datagram: bytes, address: Any) -> None:
        if self._callback_function is not None:
            self.loop.call_soon(self._deliver, datagram, address)

    def _deliver(self, datagram: bytes, address: Any) -> None:
        callback = self._callback_function
        if callback is None:  # closed since it arrived
            return
        try:
            callback(self, address, datagram)
        except CarrierError as exc:
            if "Unregistered transport" not in str(exc):
                raise


class ReportingTarget(snmp.UdpTransportTarget):  # type: ignore[misc]
    """A UDP target whose transport reports socket errors (pysnmp opens it on first use).

    Set ``report`` after ``await ReportingTarget.create(...)``.
    """

    report: Callable[[OSError], None]

    def open_client_mode(self) -> Any:
        self.transport = _ReportingUdp(self.report).open_client_mode(self.iface)
        return self.transport


class SnmpEndpoint(Protocol):
    """What ``SnmpClient`` needs of a driver's endpoint (a PDU's, a switch's)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def timeout(self) -> float: ...
    @property
    def retries(self) -> int: ...
    @property
    def auth(self) -> SnmpV3Auth | SnmpV2cAuth: ...
    @property
    def label(self) -> str: ...
    @property
    def peer(self) -> Peer: ...


class SnmpClient:
    """One agent's SNMP engine and reporting transport, for a driver to ask through.

    Requests go through ``_exchange``, which fails at once with the socket's own
    error when one comes before the answer; ``_refused`` turns pysnmp's error
    indications into sentences naming ``device``'s settings.
    """

    device = "agent"  # whose snmp settings an authentication failure points at

    def __init__(self, endpoint: SnmpEndpoint) -> None:
        self._snmp_endpoint = endpoint
        self._engine = snmp.SnmpEngine()
        self._target: Any = None
        # Set by the transport when the socket reports an error; requests waiting on it fail.
        self._fault: asyncio.Future[OSError] | None = None

    async def close(self) -> None:
        self._engine.close_dispatcher()

    def _auth_data(self) -> Any:
        return auth_data(self._snmp_endpoint.auth)

    async def _transport(self, doing: str) -> Any:
        if self._target is None:
            ep = self._snmp_endpoint
            try:
                target = await ReportingTarget.create(
                    (ep.host, ep.port), timeout=ep.timeout, retries=ep.retries
                )
            except PySnmpError as exc:
                if isinstance(exc.__context__, OSError):  # the name did not resolve
                    raise network_error(exc.__context__, ep.peer, doing) from None
                raise DriverError(f"{ep.label}: {exc}") from None
            target.report = self._socket_fault
            self._target = target
        return self._target

    def _socket_fault(self, exc: OSError) -> None:
        if self._fault is not None and not self._fault.done():
            self._fault.set_result(exc)

    async def _exchange(self, request: Awaitable[Any], doing: str) -> Any:
        """``request``'s answer, unless the socket reports an error first."""
        if self._fault is None or self._fault.done():
            self._fault = asyncio.get_running_loop().create_future()
        fault = self._fault
        pending = asyncio.ensure_future(request)
        await asyncio.wait({pending, fault}, return_when=asyncio.FIRST_COMPLETED)
        if pending.done():
            return pending.result()
        pending.cancel()  # pysnmp drops the answer of a cancelled request
        raise network_error(fault.result(), self._snmp_endpoint.peer, doing)

    def _refused(self, error_indication: Any, doing: str) -> None:
        """Raise the sentence for pysnmp's ``error_indication`` (silence, refused
        credentials, anything else); nothing when there is none."""
        if not error_indication:
            return
        ep = self._snmp_endpoint
        kind = type(error_indication).__name__
        if kind == "RequestTimedOut":
            waited = f"{ep.timeout * (ep.retries + 1):g} s"
            # An agent says nothing to a wrong v2c community: it looks like silence.
            also = "the SNMP v2c community is wrong" if isinstance(ep.auth, SnmpV2cAuth) else None
            silence = TimeoutError(str(error_indication))
            raise network_error(silence, ep.peer, doing, waited, also=also)
        if kind in AUTH_FAILURES:
            raise AuthenticationError(
                f"{ep.label}: authentication failed: the SNMP agent refused labctl's "
                f"credentials: {AUTH_FAILURES[kind]}; check the {self.device}'s snmp settings "
                f"and the secrets they name ({kind})"
            )
        raise DriverError(f"{ep.label}: SNMP error: {error_indication}")
