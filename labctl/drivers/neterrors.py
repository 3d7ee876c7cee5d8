"""Network failures as sentences: an OSError from a socket, told as what went wrong and why.

The kernel's words (``[Errno 22] Invalid argument``, ``No route to host``) say
nothing about a lab: a BMC that fails with "Invalid argument" is really one a
blackhole route swallows. The IPMI, PDU and SSH drivers hand every OS error
from the network to ``network_error``, which names the device, its address
and what was being done, says what happened and its likely cause in one
sentence, and keeps the kernel's own text in the error's ``detail`` for
``-o json`` and for whoever debugs it.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from labctl.errors import DriverError, DriverTimeout


@dataclass(frozen=True)
class Peer:
    """Who the driver was talking to, in the words the sentences use."""

    label: str  # how messages name it: "fohn BMC (10.31.0.11:623)"
    host: str
    port: int
    device: str  # what may be switched off or unplugged: "BMC", "PDU", "node"
    service: str  # what listens there: "IPMI service", "SNMP agent", "sshd"
    network: str = "the management network"


# errno -> (what happened, its likely cause); {host}, {where} (host:port), {device},
# {service} and {network} are filled in from the peer.
_SENTENCES: dict[int, tuple[str, str]] = {
    errno.ECONNREFUSED: (
        "connection refused by {where}",
        "the host is there but nothing listens on that port "
        "(the {service} is not running, or the port is wrong)",
    ),
    errno.EHOSTUNREACH: (
        "no route to {host}",
        "the {device} is off or unplugged, or {network} is down or not routed here",
    ),
    errno.ENETUNREACH: (
        "network unreachable for {host}",
        "this machine has no route to {network}: it is down or not routed here",
    ),
    errno.EINVAL: (
        "the kernel refused to send to {where}",
        "a blackhole route covers it, as when the link to {network} is gone, "
        "or the address or port is not valid",
    ),
    errno.EACCES: (
        "sending to {host} is not permitted",
        "a firewall rule or a prohibit route blocks it, or it is a broadcast address",
    ),
    errno.EPERM: (
        "sending to {host} is not permitted",
        "a firewall rule on this machine blocks it",
    ),
    errno.ECONNRESET: (
        "{where} reset the connection",
        "the {service} closed it (restarting, overloaded, or refusing this client)",
    ),
    errno.ECONNABORTED: (
        "the connection to {where} was aborted",
        "the {service} or something on the way dropped it",
    ),
    errno.EPIPE: (
        "the connection to {where} broke",
        "the {service} closed it while we were still sending",
    ),
    errno.ETIMEDOUT: (
        "no answer from {where}",
        "the {device} is off or busy, or something on the way drops the packets",
    ),
    errno.EHOSTDOWN: (
        "{host} is down",
        "the {device} does not answer on {network} (off, or unplugged)",
    ),
    errno.ENETDOWN: (
        "the network towards {host} is down",
        "the interface on this machine that reaches {network} is down",
    ),
    errno.EADDRNOTAVAIL: (
        "cannot send to {where} from here",
        "no address of this machine can reach it (the address is not valid here)",
    ),
}
_TIMEOUT_CAUSE = _SENTENCES[errno.ETIMEDOUT][1]


def is_timeout(exc: OSError) -> bool:
    # socket.timeout is TimeoutError with no errno; a TCP connect that timed out has ETIMEDOUT.
    return isinstance(exc, TimeoutError) or exc.errno == errno.ETIMEDOUT


def explain(exc: OSError, peer: Peer, waited: str | None = None, also: str | None = None) -> str:
    """What happened and its likely cause, e.g. ``no route to 10.31.0.11: the BMC is off ...``.

    ``waited`` (such as ``5 s (3 tries)``) is how long a timeout waited; ``also`` is one
    more likely cause the caller knows of.
    """
    sentence = _explain(exc, peer, waited)
    return f"{sentence}, or {also}" if also else sentence


def _explain(exc: OSError, peer: Peer, waited: str | None) -> str:
    fields = {
        "host": peer.host,
        "where": f"{peer.host}:{peer.port}",
        "device": peer.device,
        "service": peer.service,
        "network": peer.network,
    }
    if isinstance(exc, socket.gaierror):
        return (
            f"cannot resolve {peer.host} ({exc.strerror or exc}): "
            "the name is wrong, or no name server answers"
        )
    if is_timeout(exc):
        happened = f"no answer within {waited}" if waited else "no answer in time"
        return f"{happened}: {_TIMEOUT_CAUSE.format(**fields)}"
    known = _SENTENCES.get(exc.errno) if exc.errno is not None else None
    if known is None:
        # An errno we have no story for: its own words are still better than nothing.
        return f"network error talking to {fields['where']}: {exc.strerror or exc}"
    happened, cause = known
    return f"{happened.format(**fields)}: {cause.format(**fields)}"


def network_error(
    exc: OSError, peer: Peer, doing: str, waited: str | None = None, also: str | None = None
) -> DriverError:
    """The error to raise for ``exc``: a sentence, the kernel's text kept in ``detail``.

    Timeouts are ``DriverTimeout`` (worth retrying); the rest ``DriverError``.
    """
    kind = DriverTimeout if is_timeout(exc) else DriverError
    error = kind(f"{peer.label}: {doing}: {explain(exc, peer, waited, also)}")
    error.detail = str(exc) or type(exc).__name__
    return error
