"""Which VLANs each switch port carries, from the NICs cabled to it (pure).

A server port carries the networks of its NIC's addresses: one network is an
access port, several a trunk (the untagged one native). An uplink carries every
VLAN of the lab. A network without a VLAN id is the untagged VLAN 1. EOS and
IOS renders share this; FRR (SONiC) leaves ports to the platform.
"""

from __future__ import annotations

from dataclasses import dataclass

from labctl.inventory.model import Inventory, Switch, SwitchPort

DEFAULT_VLAN = 1


@dataclass(frozen=True)
class PortPlan:
    port: SwitchPort
    description: str | None
    mode: str  # access, trunk, unused
    vlans: tuple[int, ...]  # access: one; trunk: every allowed VLAN
    native: int | None  # trunk's untagged VLAN, when it has one besides 1


@dataclass(frozen=True)
class VlanPlan:
    id: int
    name: str


def vlans(inventory: Inventory) -> list[VlanPlan]:
    """The lab's tagged networks as VLANs, by id."""
    out = {n.vlan: n.name for n in inventory.networks if n.vlan is not None}
    return [VlanPlan(i, out[i]) for i in sorted(out)]


def _vlan(inventory: Inventory, network: str) -> int:
    for n in inventory.networks:
        if n.name == network:
            return n.vlan or DEFAULT_VLAN
    return DEFAULT_VLAN


def ports(inventory: Inventory, switch: Switch) -> list[PortPlan]:
    cabled = {
        nic.port: (server, nic)
        for server in inventory.servers
        for nic in server.nics
        if nic.switch == switch.name and nic.port
    }
    every = tuple(sorted({DEFAULT_VLAN, *(v.id for v in vlans(inventory))}))
    out = []
    for port in switch.ports:
        description = port.description
        if port.uplink:
            out.append(PortPlan(port, description, "trunk", every, None))
            continue
        found = cabled.get(port.name)
        if found is None:
            out.append(PortPlan(port, description, "unused", (), None))
            continue
        server, nic = found
        description = description or f"{server.name} {nic.name}"
        carried = tuple(sorted({_vlan(inventory, a.network) for a in nic.addresses}))
        if len(carried) <= 1:
            out.append(PortPlan(port, description, "access", carried or (DEFAULT_VLAN,), None))
        else:
            untagged = [
                _vlan(inventory, a.network)
                for a in nic.addresses
                if inventory.network(a.network).vlan is None
            ]
            out.append(
                PortPlan(port, description, "trunk", carried, untagged[0] if untagged else None)
            )
    return out
