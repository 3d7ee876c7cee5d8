"""Address arithmetic over the inventory's IP plan (pure)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from labctl.inventory.model import Inventory
from labctl.inventory.problems import DocPath

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# Parsed once per text: the checks read each address several times (about 3,000
# distinct addresses, 12,000 reads on 1,000 servers), and the results are immutable.
@functools.cache
def parse_network(text: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        return None


@functools.cache
def parse_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_reserved_in(address: IPAddress, network: IPNetwork) -> bool:
    """Network or broadcast address of an IPv4 network that has them."""
    if network.version != 4 or network.prefixlen >= 31:
        return False
    return address in (network.network_address, network.broadcast_address)


@dataclass(frozen=True, slots=True)
class Assignment:
    """One address given to one thing, and where the inventory says so."""

    owner: str  # "fohn eno1", "fohn BMC", "switch tor", "PDU pdu1"
    network: str
    address: str
    path: DocPath


def assignments(inventory: Inventory) -> Iterator[Assignment]:
    for server in inventory.servers:
        for nic in server.nics:
            for a in nic.addresses:
                yield Assignment(f"{server.name} {nic.name}", a.network, a.address, a.path)
        bmc = server.bmc
        yield Assignment(f"{server.name} BMC", bmc.network, bmc.address, (*bmc.path, "address"))
    for switch in inventory.switches:
        if switch.management:
            m = switch.management
            yield Assignment(f"switch {switch.name}", m.network, m.address, (*m.path, "address"))
        for a in switch.interfaces:
            yield Assignment(f"switch {switch.name}", a.network, a.address, (*a.path, "address"))
    for pdu in inventory.pdus:
        yield Assignment(f"PDU {pdu.name}", pdu.network, pdu.address, (*pdu.path, "address"))


def utilisation(inventory: Inventory) -> dict[str, tuple[int, int]]:
    """Per network: (addresses assigned, usable host addresses)."""
    used: dict[str, set[str]] = {n.name: set() for n in inventory.networks}
    for a in assignments(inventory):
        if a.network in used:
            used[a.network].add(a.address)
    boot = inventory.lab.boot
    if boot is not None and boot.network in used:  # the boot service's address is taken
        used[boot.network].add(boot.address)
    out: dict[str, tuple[int, int]] = {}
    for n in inventory.networks:
        net = parse_network(n.cidr)
        if net is None:
            continue
        usable = net.num_addresses - (2 if net.version == 4 and net.prefixlen < 31 else 0)
        out[n.name] = (len(used[n.name]), usable)
    return out
