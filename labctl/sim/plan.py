"""The simulated lab as data: namespaces, bridges, links and addresses, from the inventory (pure).

Layout: one *fabric* namespace holds a bridge per network and, on the
management bridge, the BMC and PDU addresses (their daemons run there). Each
server gets its own namespace whose NICs are veths into the fabric bridges,
with the inventory's names, MACs and addresses. The fabric routes between
networks (it owns each network's gateway address, or the last usable one).
The host gets one veth into the fabric, on a link-local /30, with routes to
the lab's prefixes through it and blackhole routes behind them as a safety net.
The switches the nodes peer with over BGP are namespaces of their own, built
like nodes and running FRR (``sim/switches.py``); they add no host route.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from labctl.inventory.export import primary_address
from labctl.inventory.model import Inventory
from labctl.sim.records import SimBridge, SimNic, SimNode
from labctl.sim.switches import build_switches

TRANSIT = ipaddress.ip_network("169.254.77.0/30")  # host <-> fabric


@dataclass(frozen=True)
class SimPlan:
    lab_id: str
    fabric: str
    bridges: tuple[SimBridge, ...]
    nodes: tuple[SimNode, ...]
    host_link: str  # veth name in the host namespace
    host_address: str  # CIDR
    fabric_address: str  # CIDR
    prefixes: tuple[str, ...]  # routed from the host into the lab
    switches: tuple[SimNode, ...] = ()  # routing switches, run like nodes (sim/switches.py)


def lab_id(inventory: Inventory) -> str:
    """Short and stable: interface names have 15 characters at most."""
    return hashlib.sha256(inventory.lab.name.encode()).hexdigest()[:4]


def _fabric_address(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network, gateway: str | None
) -> str:
    host = gateway or str(network[-2] if network.num_addresses > 2 else network[-1])
    return f"{host}/{network.prefixlen}"


def build_plan(inventory: Inventory) -> SimPlan:
    lid = lab_id(inventory)
    nets = {n.name: n for n in inventory.networks}
    used: dict[str, list[str]] = {}  # network -> BMC/PDU addresses
    for server in inventory.servers:
        used.setdefault(server.bmc.network, []).append(server.bmc.address)
        for a in server.addresses():
            used.setdefault(a.network, [])
    for pdu in inventory.pdus:
        used.setdefault(pdu.network, []).append(pdu.address)
    bridges = []
    for i, name in enumerate(n for n in nets if n in used):
        net = ipaddress.ip_network(nets[name].cidr)
        bridges.append(
            SimBridge(
                network=name,
                name=f"lb{lid}{i}",
                address=_fabric_address(net, nets[name].gateway),
                extra=tuple(f"{a}/{net.prefixlen}" for a in used[name]),
            )
        )
    bridge_of = {b.network: b for b in bridges}
    nodes = []
    for s_index, server in enumerate(inventory.servers):
        nics = []
        gateway = None
        for n_index, nic in enumerate(server.nics):
            addresses = []
            bridge = None
            for a in nic.addresses:
                net = ipaddress.ip_network(nets[a.network].cidr)
                addresses.append(f"{a.address}/{net.prefixlen}")
                # A NIC sits on its first address's network; further networks on the
                # same NIC (VLANs on a trunk) are not simulated yet.
                if bridge is None:
                    bridge = bridge_of[a.network].name
                if (
                    nets[a.network].gateway
                    and gateway is None
                    and nets[a.network].purpose == "public"
                ):
                    gateway = nets[a.network].gateway
            if bridge is None:
                continue  # a NIC with no address is not cabled in the simulation
            nics.append(
                SimNic(
                    nic.name,
                    nic.mac.lower(),
                    bridge,
                    f"lv{lid}{s_index}x{n_index}",
                    tuple(addresses),
                )
            )
        ssh_address = primary_address(server, inventory)
        assert ssh_address is not None  # LAB056 guarantees it on a valid inventory
        listen = tuple(a.split("/")[0] for nic in nics for a in nic.addresses)
        nodes.append(
            SimNode(
                server.name, f"lab-{lid}-{server.name}", tuple(nics), gateway, ssh_address, listen
            )
        )
    prefixes = tuple(str(ipaddress.ip_network(nets[b.network].cidr)) for b in bridges)

    return SimPlan(
        lab_id=lid,
        fabric=f"lab-{lid}-fabric",
        bridges=tuple(bridges),
        nodes=tuple(nodes),
        host_link=f"lh{lid}",
        host_address=f"{TRANSIT[1]}/30",
        fabric_address=f"{TRANSIT[2]}/30",
        prefixes=prefixes,
        switches=build_switches(inventory, tuple(bridges), lid),
    )


@dataclass(frozen=True)
class Resize:
    """How an up lab's servers differ from the inventory's (``sim up`` on an up lab)."""

    join: tuple[str, ...]  # in the inventory, not in the lab
    leave: tuple[str, ...]  # in the lab, gone from the inventory
    replace: tuple[str, ...]  # in both, but the inventory's NICs have other MACs

    def __bool__(self) -> bool:
        return bool(self.join or self.leave or self.replace)


def resize(plan: SimPlan, running: dict[str, dict[str, str]]) -> Resize:
    """What to add, remove and make again: ``running`` is each node the lab has, with the
    MAC of each of its NICs (empty when they could not be read: then it is not replaced).

    A server whose MACs changed is another machine under the same name (a replacement):
    the lab drops the old one and makes a new one, disks and host key included.
    """
    wanted = {n.name: n for n in plan.nodes}
    replace = []
    for name, macs in running.items():
        node = wanted.get(name)
        if node is None or not macs:
            continue
        if any(macs.get(nic.name, nic.mac) != nic.mac for nic in node.nics):
            replace.append(name)
    return Resize(
        join=tuple(n.name for n in plan.nodes if n.name not in running),
        leave=tuple(name for name in running if name not in wanted),
        replace=tuple(replace),
    )
