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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.hlapi.v3arch import asyncio as snmp

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


class ReportingTarget(snmp.UdpTransportTarget):  # type: ignore[misc]
    """A UDP target whose transport reports socket errors (pysnmp opens it on first use).

    Set ``report`` after ``await ReportingTarget.create(...)``.
    """

    report: Callable[[OSError], None]

    def open_client_mode(self) -> Any:
        self.transport = _ReportingUdp(self.report).open_client_mode(self.iface)
        return self.transport
