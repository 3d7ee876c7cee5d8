"""The simulated lab's records: a bridge, a NIC, a node (a server or a routing switch).

They live apart from ``sim/plan.py``, which builds the whole lab from them, so
that ``sim/switches.py`` can build switches from the same records without
importing the plan that imports it (the two used to import each other).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SimBridge:
    network: str
    name: str  # bridge device in the fabric namespace
    address: str  # fabric's address on it, CIDR form (the network's gateway)
    extra: tuple[str, ...]  # BMC/PDU addresses living on this bridge, CIDR form


@dataclass(frozen=True)
class SimNic:
    name: str
    mac: str
    bridge: str
    peer: str  # the veth end in the fabric namespace
    addresses: tuple[str, ...]  # CIDR form


@dataclass(frozen=True)
class SimNode:
    name: str
    netns: str
    nics: tuple[SimNic, ...]
    gateway: str | None
    ssh_address: str
    listen: tuple[str, ...]  # every address sshd listens on
