"""Which protocol a BMC speaks, asked without credentials: `labctl doctor`'s probes.

A BMC whose bmc.type names one protocol and that does not answer it may speak the
other (a server replaced by a newer one, an iLO set to Redfish only). Doctor then
asks the other protocol's anonymous door: the Redfish service root
(``GET /redfish/v1/``, which DSP0266 serves without authentication) or IPMI's RMCP
presence ping (ASF, UDP 623). Neither sends a user name or a password, so asking
a device that turns out to be something else gives nothing away. Each is bounded
by ``timeout`` and tried once.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl

# RMCP (version 6, no ack, class ASF) + ASF presence ping (IANA 4542, type 0x80).
_PING_TYPE, _PONG_TYPE = 0x80, 0x40


def _ping(tag: int) -> bytes:
    return bytes([0x06, 0x00, 0xFF, 0x06, 0x00, 0x00, 0x11, 0xBE, _PING_TYPE, tag, 0x00, 0x00])


def is_pong(data: bytes, tag: int) -> bool:
    """Whether ``data`` is an ASF presence pong answering the ping tagged ``tag``."""
    return (
        len(data) >= 12
        and data[0] == 0x06
        and data[3] == 0x06
        and data[8] == _PONG_TYPE
        and (data[9] == tag)
    )


def rmcp_ping(host: str, port: int, timeout: float) -> bool:
    """Whether an RMCP presence ping to ``host:port`` is answered within ``timeout``."""
    tag = os.urandom(1)[0] or 1
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
            sock.send(_ping(tag))
            return is_pong(sock.recv(512), tag)
        except OSError:  # refused, unreachable, timed out: no IPMI service there
            return False


def redfish_service_root(host: str, port: int, timeout: float, scheme: str = "https") -> bool:
    """Whether ``scheme://host:port/redfish/v1/`` answers as a Redfish service root.

    The certificate is not checked: no credential is sent, and the question is only
    what the device speaks.
    """
    if scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/redfish/v1/", headers={"Accept": "application/json"})
        response = conn.getresponse()
        if response.status != 200:
            return False
        body = json.loads(response.read(65536))
        return isinstance(body, dict) and ("RedfishVersion" in body or "Systems" in body)
    except (OSError, ValueError, http.client.HTTPException):
        return False
    finally:
        conn.close()
