"""A DNS A/AAAA question to named resolvers: whether the inventory's names resolve there.

`labctl doctor` asks the resolvers the inventory lists for a network
(``networks[].dns``), not the operator's own: the nodes use those. The question is
one UDP datagram (RFC 1035) with recursion desired, to each resolver in turn until
one answers, each within ``timeout``; no library is needed for that, and none is
pulled in. The answer's A and AAAA records are read (CNAMEs followed by the resolver
itself, as it puts their targets' records in the same answer).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Sequence

from labctl.errors import DriverError

_A, _AAAA, _IN = 1, 28, 1
_RCODES = {1: "format error", 2: "server failure", 3: "no such name (NXDOMAIN)", 5: "refused"}


def question(name: str, qtype: int, ident: int) -> bytes:
    """A query for ``name`` (type ``qtype``), recursion desired."""
    labels = b"".join(
        bytes([len(part)]) + part
        for part in (p.encode("idna") for p in name.rstrip(".").split("."))
    )
    return (
        struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
        + labels
        + b"\0"
        + struct.pack(">HH", qtype, _IN)
    )


def _skip_name(data: bytes, at: int) -> int:
    while True:
        length = data[at]
        if length & 0xC0 == 0xC0:  # a compression pointer ends the name
            return at + 2
        at += 1 + length
        if length == 0:
            return at


def addresses(data: bytes, ident: int) -> list[str]:
    """The A and AAAA records of the answer ``data`` to query ``ident``; DriverError
    with the resolver's reason when it answered with an error."""
    if len(data) < 12:
        raise DriverError("a truncated DNS answer")
    got, flags, qd, an = struct.unpack(">HHHH", data[:8])
    if got != ident:
        raise DriverError("a DNS answer to another question")
    rcode = flags & 0x000F
    if rcode:
        raise DriverError(_RCODES.get(rcode, f"DNS error {rcode}"))
    at = 12
    for _ in range(qd):
        at = _skip_name(data, at) + 4
    found = []
    for _ in range(an):
        at = _skip_name(data, at)
        rtype, _rclass, _ttl, length = struct.unpack(">HHIH", data[at : at + 10])
        at += 10
        rdata = data[at : at + length]
        at += length
        if rtype == _A and length == 4:
            found.append(str(ipaddress.IPv4Address(rdata)))
        elif rtype == _AAAA and length == 16:
            found.append(str(ipaddress.IPv6Address(rdata)))
    return found


def ask(name: str, server: str, port: int, timeout: float) -> list[str]:
    """``name``'s A and AAAA records on the resolver ``server:port``."""
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    found: list[str] = []
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((server, port))
        for qtype in (_A, _AAAA):
            ident = int.from_bytes(os.urandom(2), "big")
            sock.send(question(name, qtype, ident))
            try:
                found += addresses(sock.recv(4096), ident)
            except DriverError:
                if not found:  # no IPv4 address either: the name's error is the answer
                    raise
                # Some resolvers answer AAAA for a name they hold only an A record of
                # with NXDOMAIN (dnsmasq's --local): the name still resolves.
    return found


def resolve_a(
    name: str, servers: Sequence[str], timeout: float, port: int = 53
) -> tuple[str, list[str]]:
    """(the resolver that answered, ``name``'s addresses there); each resolver tried in
    turn; a DriverError naming each one's failure when none answered."""
    failures = []
    for server in servers:
        try:
            return server, ask(name, server, port, timeout)
        except DriverError as exc:
            if "NXDOMAIN" in str(exc):
                raise DriverError(f"{exc} (on {server})") from None
            failures.append(f"{server}: {exc}")
        except OSError as exc:
            failures.append(f"{server}: {exc.strerror or exc}")
    raise DriverError("no resolver answered: " + "; ".join(failures))
