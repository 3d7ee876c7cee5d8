"""The lab's BGP sessions and pod blocks, worked out once from the inventory (pure).

Every render (Calico resources, BIRD, FRR, EOS) and every check reads the fabric
from here, so they cannot disagree on who peers with whom: each node's BGP
address, its pod block (the block Calico's IPAM would hand it, in inventory
order), the switch peers each node has, the node-to-node mesh or the route
reflector sessions. Nothing here touches the network.
It lives in the inventory package, beside ``ipam.py``, because it is a
reading of the inventory that renders, checks and Calico's sessions all build on.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from labctl.inventory.export import primary_address
from labctl.inventory.model import CalicoPeer, Inventory, Server, Switch
from labctl.inventory.problems import DocPath

ROUTE_REFLECTOR = "route-reflector"


@dataclass(frozen=True)
class Session:
    """One BGP session as seen from ``node``: the protocol name calico-node's BIRD uses."""

    node: str
    protocol: str  # Mesh_A_B_C_D, Node_A_B_C_D, Global_A_B_C_D (as calico-node names them)
    local_address: str
    peer_address: str
    peer_asn: int
    peer: str  # the other end's name: a server or a switch
    kind: str  # mesh, reflector (this node is the reflector's client), client, switch
    password: bool = False


def nodes(inventory: Inventory) -> tuple[Server, ...]:
    """Every server runs calico-node: workers and the control plane alike."""
    return inventory.servers


def bgp_address(inventory: Inventory, server: Server) -> str | None:
    """The node's BGP address: on cluster.calico.network, else the one labctl reaches it on."""
    network = inventory.cluster.calico.network
    if network is not None:
        found = server.addresses(network)
        return found[0].address if found else None
    return primary_address(server, inventory)


def external_ranges(inventory: Inventory) -> list[tuple[str, DocPath]]:
    """Calico's serviceExternalIPs, each with the field that gives it: the CIDR of
    advertise.external_network (a network dedicated to ingress), then each of
    advertise.external_cidrs, once each. An unknown network (LAB095) gives none."""
    advertise = inventory.cluster.calico.advertise
    where = ("cluster", "calico", "advertise")
    out: list[tuple[str, DocPath]] = []
    if advertise.external_network is not None:
        for network in inventory.networks:
            if network.name == advertise.external_network:
                out.append((network.cidr, (*where, "external_network")))
                break
    for i, cidr in enumerate(advertise.external_cidrs):
        if cidr not in (c for c, _ in out):
            out.append((cidr, (*where, "external_cidrs", i)))
    return out


def pod_block(inventory: Inventory, index: int) -> str | None:
    """The ``index``-th block of the pod CIDR, or None when the CIDR has no such block."""
    return _pod_blocks(inventory)(index)


def _pod_blocks(inventory: Inventory) -> Callable[[int], str | None]:
    """``pod_block`` with the pod CIDR read once, for callers that want many blocks."""
    try:
        pod = ipaddress.ip_network(inventory.cluster.kubernetes.pod_cidr)
    except ValueError:
        return lambda index: None
    size = inventory.cluster.calico.block_size
    if size < pod.prefixlen or size > pod.max_prefixlen:
        return lambda index: None
    count = 1 << (size - pod.prefixlen)
    base = int(pod.network_address)
    step = 1 << (pod.max_prefixlen - size)

    def block(index: int) -> str | None:
        if index >= count:
            return None
        return str(ipaddress.ip_network((base + index * step, size)))

    return block


def blocks(inventory: Inventory) -> dict[str, str]:
    """Each node's pod block, by node name (nodes beyond the CIDR's blocks get none)."""
    block_of = _pod_blocks(inventory)
    out = {}
    for i, server in enumerate(nodes(inventory)):
        block = block_of(i)
        if block is not None:
            out[server.name] = block
    return out


def node_block(inventory: Inventory, server: Server) -> str | None:
    """``blocks(inventory).get(server.name)`` without working out every other node's."""
    for i, other in enumerate(nodes(inventory)):
        if other.name == server.name:
            return pod_block(inventory, i)
    return None


def switch(inventory: Inventory, name: str) -> Switch | None:
    for s in inventory.switches:
        if s.name == name:
            return s
    return None


def peer_nodes(inventory: Inventory, peer: CalicoPeer) -> list[Server]:
    """The nodes that peer with a switch peer: all, those cabled to it, or those named."""
    if peer.nodes == "all":
        return list(nodes(inventory))
    if peer.nodes == "attached":
        return [s for s in nodes(inventory) if any(n.switch == peer.switch for n in s.nics)]
    wanted = set(peer.nodes)
    return [s for s in nodes(inventory) if s.name in wanted]


def reflectors(inventory: Inventory) -> list[Server]:
    return [s for s in nodes(inventory) if ROUTE_REFLECTOR in s.roles]


def protocol_name(prefix: str, address: str) -> str:
    return f"{prefix}_{address.replace('.', '_').replace(':', '_')}"


def sessions(inventory: Inventory, node: str | None = None, mesh: bool = True) -> list[Session]:
    """Every session from every node's side, in a stable order (nodes, then peers).

    ``node``: only that node's sessions; ``mesh=False``: only the switch sessions.
    The node-to-node mesh has n*(n-1) sessions, so one node's BIRD configuration
    asks for its own (n-1) rather than filtering all of them, and a switch's for the
    switch sessions alone: rendering every node stays O(n^2), the mesh's own size.
    """
    calico = inventory.cluster.calico
    addresses = {s.name: bgp_address(inventory, s) for s in nodes(inventory)}
    rrs = {s.name for s in reflectors(inventory)} if mesh else set()
    peers = [
        (peer, sw, {s.name for s in peer_nodes(inventory, peer)})
        for peer in calico.peers
        if (sw := switch(inventory, peer.switch)) is not None and sw.asn is not None
    ]
    mesh_pw = calico.mesh_password is not None
    out: list[Session] = []
    for server in nodes(inventory):
        if node is not None and server.name != node:
            continue
        local = addresses[server.name]
        if local is None:
            continue
        for other in nodes(inventory) if mesh else ():
            theirs = addresses[other.name]
            if other.name == server.name or theirs is None:
                continue
            if calico.node_to_node_mesh:
                kind = "mesh"
                prefix = "Mesh"
            elif server.name in rrs and other.name in rrs:
                kind, prefix = "reflector-peer", "Node"
            elif server.name in rrs:
                kind, prefix = "client", "Node"
            elif other.name in rrs:
                kind, prefix = "reflector", "Node"
            else:
                continue
            out.append(
                Session(
                    server.name,
                    protocol_name(prefix, theirs),
                    local,
                    theirs,
                    calico.asn,
                    other.name,
                    kind,
                    mesh_pw,
                )
            )
        for peer, sw, peering in peers:
            if server.name not in peering:
                continue
            assert sw.asn is not None
            out.append(
                Session(
                    server.name,
                    # confd's names: a BGPPeer with no node selector (nodes: all)
                    # is global, any other is the node's own (render/calico.py).
                    protocol_name("Global" if peer.nodes == "all" else "Node", peer.address),
                    _source_for(server, inventory, sw, peer.address) or local,
                    peer.address,
                    sw.asn,
                    sw.name,
                    "switch",
                    peer.password is not None,
                )
            )
    return out


def _source_for(server: Server, inventory: Inventory, sw: Switch, address: str) -> str | None:
    """The node's address on the network of the switch interface it peers with."""
    interface = sw.interface(address)
    if interface is None:
        return None
    found = server.addresses(interface.network)
    return found[0].address if found else None


def switch_sessions(inventory: Inventory, name: str) -> list[Session]:
    """The sessions a switch has, from the nodes' side (peer is the switch)."""
    return [s for s in sessions(inventory, mesh=False) if s.kind == "switch" and s.peer == name]


def peering_switches(inventory: Inventory) -> list[Switch]:
    """Switches at least one node peers with, in inventory order."""
    names = {s.peer for s in sessions(inventory, mesh=False) if s.kind == "switch"}
    return [s for s in inventory.switches if s.name in names]
