"""Semantic checks of the BGP model (cluster.calico and the switches it peers with).

Kept apart from ``checks.py`` so the fabric's rules read together; they
register into the same registry (ids LAB090-LAB099) and are imported by it.
They read the fabric through ``labctl.inventory.topology``, as the renders do.
LAB150 (Calico's serviceExternalIPs hold nothing the inventory gives an address)
is theirs too, numbered apart because LAB090-LAB099 were taken.
LAB120 and LAB121 are lab checks: what a real lab needs that the simulated one
stands in for (calico-node from Calico's manifest, switches whose BGP side can
be read), so they count only where the lab kind is known (``checks.lab_check``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from labctl.inventory import ipam, topology
from labctl.inventory.model import Inventory
from labctl.inventory.registry import E, Finding, W, check, lab_check

# 0 and 65535 are reserved (RFC 7607, RFC 7300), 23456 is AS_TRANS (RFC 6793),
# 4294967295 is reserved (RFC 7300): no BGP speaker may use them as its own.
RESERVED_ASNS = {0, 23456, 65535, 4294967295}
CALICO = ("cluster", "calico")


@check(
    "LAB090", E, "A BGP peer address is an interface of its switch, on a network its nodes have."
)
def peer_address_resolves(inv: Inventory) -> Iterator[Finding]:
    for peer in inv.cluster.calico.peers:
        sw = topology.switch(inv, peer.switch)
        if sw is None:
            continue  # LAB038
        where = (*peer.path, "address")
        interface = sw.interface(peer.address)
        if interface is None:
            have = ", ".join(f"{a.address} ({a.network})" for a in sw.interfaces) or "none"
            yield (
                where,
                f"peer address {peer.address} is not one of {sw.name}'s interfaces "
                f"(switches[].interfaces: {have})",
            )
            continue
        for server in topology.peer_nodes(inv, peer):
            if not server.addresses(interface.network):
                yield (
                    where,
                    f"{server.name} peers with {sw.name} at {peer.address} on network "
                    f"{interface.network}, but has no address on {interface.network}",
                )


@check("LAB091", E, "AS numbers are usable: not 0, 23456 (AS_TRANS), 65535 or 4294967295.")
def usable_asns(inv: Inventory) -> Iterator[Finding]:
    if inv.cluster.calico.asn in RESERVED_ASNS:
        yield (
            (*CALICO, "asn"),
            f"AS {inv.cluster.calico.asn} is reserved; no BGP speaker may use it",
        )
    for sw in inv.switches:
        if sw.asn in RESERVED_ASNS:
            yield (
                (*sw.path, "asn"),
                f"{sw.name}: AS {sw.asn} is reserved; no BGP speaker may use it",
            )


@check("LAB092", E, "BGP router ids are IPv4 addresses, unique among switches and nodes.")
def router_ids(inv: Inventory) -> Iterator[Finding]:
    seen: dict[str, str] = {}
    for server in topology.nodes(inv):
        address = topology.bgp_address(inv, server)
        if address is not None:
            seen[address] = f"node {server.name}"
    for sw in inv.switches:
        if sw.router_id is None:
            continue
        where = (*sw.path, "router_id")
        try:
            ipaddress.IPv4Address(sw.router_id)
        except ValueError:
            yield where, f"{sw.name}: router_id '{sw.router_id}' is not an IPv4 address"
            continue
        if sw.router_id in seen:
            yield (
                where,
                f"{sw.name}: router_id {sw.router_id} is also {seen[sw.router_id]}'s; "
                "BGP refuses a session between speakers with the same id",
            )
        seen[sw.router_id] = f"switch {sw.name}"


@check("LAB093", E, "With the node-to-node mesh off, route reflectors or switch peers exist.")
def mesh_off_needs_a_path(inv: Inventory) -> Iterator[Finding]:
    calico = inv.cluster.calico
    if calico.node_to_node_mesh or calico.peers or topology.reflectors(inv):
        return
    yield (
        (*CALICO, "node_to_node_mesh"),
        "node_to_node_mesh is off but no server has the route-reflector role and "
        "cluster.calico.peers is empty: no node would learn another's pod routes",
    )


@check("LAB094", E, "The block size fits the pod CIDR, with a block for every node.")
def block_size_fits(inv: Inventory) -> Iterator[Finding]:
    pod = ipam.parse_network(inv.cluster.kubernetes.pod_cidr)
    if pod is None:
        return  # LAB011
    size = inv.cluster.calico.block_size
    where = (*CALICO, "block_size")
    if size < pod.prefixlen or size > pod.max_prefixlen:
        yield where, f"block size /{size} does not fit the pod CIDR {pod}"
        return
    count = 1 << (size - pod.prefixlen)
    nodes = len(topology.nodes(inv))
    if count < nodes:
        yield (
            where,
            f"the pod CIDR {pod} holds {count} block(s) of /{size}, fewer than the {nodes} nodes",
        )


@check("LAB095", E, "A peer names existing servers; external_network and network exist.")
def calico_refs(inv: Inventory) -> Iterator[Finding]:
    servers = {s.name for s in inv.servers}
    networks = {n.name for n in inv.networks}
    calico = inv.cluster.calico
    for peer in calico.peers:
        if isinstance(peer.nodes, tuple):
            for i, name in enumerate(peer.nodes):
                if name not in servers:
                    yield (*peer.path, "nodes", i), f"peer {peer.switch}: no server named '{name}'"
    external = calico.advertise.external_network
    if external is not None and external not in networks:
        yield (
            (*CALICO, "advertise", "external_network"),
            f"external_network '{external}' is not one of the inventory's networks",
        )
    if calico.network is not None:
        if calico.network not in networks:
            yield (*CALICO, "network"), f"network '{calico.network}' is not defined"
        else:
            for server in topology.nodes(inv):
                if not server.addresses(calico.network):
                    yield (
                        (*CALICO, "network"),
                        f"{server.name} has no address on {calico.network}, "
                        "the network nodes peer on",
                    )


@check("LAB096", W, "Route reflectors are used with the node-to-node mesh off.")
def reflectors_without_mesh(inv: Inventory) -> Iterator[Finding]:
    rrs = topology.reflectors(inv)
    if rrs and inv.cluster.calico.node_to_node_mesh:
        yield (
            (*rrs[0].path, "roles"),
            f"{rrs[0].name} is a route reflector but node_to_node_mesh is on: "
            "every node already peers with every other, the reflectors add nothing",
        )


@check("LAB097", E, "A switch in the cluster's AS (iBGP) is not peered while the mesh is off.")
def ibgp_switch_consistent(inv: Inventory) -> Iterator[Finding]:
    # An iBGP speaker does not pass one iBGP peer's routes to another: with the mesh
    # off, a switch in the cluster's own AS would leave the nodes deaf to each other
    # unless it reflects routes, which labctl does not configure on switches.
    calico = inv.cluster.calico
    if calico.node_to_node_mesh or topology.reflectors(inv):
        return
    for peer in calico.peers:
        sw = topology.switch(inv, peer.switch)
        if sw is not None and sw.asn == calico.asn:
            yield (
                (*peer.path, "switch"),
                f"{sw.name} is in the cluster's AS {calico.asn} (iBGP) and the mesh is off: "
                "it would not pass one node's routes to another; give it its own AS (eBGP)",
            )


@check("LAB098", W, "The BGP hold time is at least three keepalive intervals.")
def hold_time(inv: Inventory) -> Iterator[Finding]:
    calico = inv.cluster.calico
    if calico.hold_time < 3 * calico.keepalive_time:
        yield (
            (*CALICO, "hold_time"),
            f"hold_time {calico.hold_time} s is less than three keepalives "
            f"({calico.keepalive_time} s each): one lost keepalive may drop sessions",
        )


@check("LAB099", E, "A switch whose BGP status is read over SNMP has a management address.")
def snmp_switch_reachable(inv: Inventory) -> Iterator[Finding]:
    for sw in inv.switches:
        if sw.bgp_status == "snmp" and sw.management is None:
            yield (
                (*sw.path, "bgp_status"),
                f"{sw.name}'s BGP status is read over SNMP (bgp_status: snmp), which goes to its "
                "management address, and it has none (switches[].management)",
            )


@lab_check("LAB120", E, "A real lab names Calico's manifest (cluster.calico.manifest).")
def real_lab_has_calico_manifest(inv: Inventory, simulated: bool) -> Iterator[Finding]:
    calico = inv.cluster.calico
    if calico.manifest is not None:
        return
    if simulated:
        yield (
            CALICO,
            "no cluster.calico.manifest: the simulated lab applies labctl's stand-in "
            "definitions of Calico's kinds, which calico-node's confd, CNI plugin and Felix "
            "read on its nodes (Felix unless LABCTL_CALICO_FELIX=0); a real lab's bootstrap "
            "refuses to go on without the manifest",
        )
        return
    yield (
        CALICO,
        "no cluster.calico.manifest: on a real lab nothing would install calico-node, so "
        "no node would configure its BGP sessions and every Node would stay NotReady; "
        f"name Calico's manifest{f' for version {calico.version}' if calico.version else ''} "
        "as {url: ..., sha256: ...} (docs/calico.md)",
    )


@lab_check("LAB121", E, "On a real lab, labctl can read each peering switch's BGP sessions.")
def real_lab_switch_sessions_readable(inv: Inventory, simulated: bool) -> Iterator[Finding]:
    if simulated:
        return  # every simulated switch runs FRR, read over SSH
    for sw in topology.peering_switches(inv):
        if sw.bgp_source is None:  # bgp_status, else FRR's JSON over SSH
            runs = f"runs {sw.platform}" if sw.platform else "names no platform"
            yield (
                (*sw.path, "platform") if sw.platform else sw.path,
                f"{sw.name} peers with the nodes but {runs}, whose BGP sessions labctl "
                "reads only over SNMP: without bgp_status: snmp (and its snmp settings) "
                "bootstrap could not prove its sessions Established",
            )


def _holders(inv: Inventory) -> list[tuple[ipam.IPAddress, str]]:
    """Every address the inventory gives to something, with who holds it."""
    out: list[tuple[ipam.IPAddress, str]] = []

    def add(text: str | None, who: str, unless_held: bool = False) -> None:
        ip = ipam.parse_address(text) if text else None
        if ip is not None and not (unless_held and any(ip == held for held, _ in out)):
            out.append((ip, who))

    for a in ipam.assignments(inv):
        add(a.address, a.owner)
    for n in inv.networks:
        add(n.gateway, f"the gateway of {n.name}")
        for dns in n.dns:
            add(dns, f"a DNS server of {n.name}")
    for sw in inv.switches:
        add(sw.router_id, f"switch {sw.name}'s router id", unless_held=True)
    for peer in inv.cluster.calico.peers:  # a switch's interface (LAB090)
        add(peer.address, f"BGP peer {peer.switch}", unless_held=True)
    api = inv.cluster.kubernetes.api_endpoint
    add(api.address, f"the API endpoint {api.name}")
    if inv.lab.boot is not None:
        add(inv.lab.boot.address, "the boot service, lab.boot.address")
    return out


@check(
    "LAB150",
    E,
    "Ingress ranges (serviceExternalIPs) hold no inventory address, nor pod or service CIDRs.",
)
def external_ips_hold_nothing(inv: Inventory) -> Iterator[Finding]:
    # Felix drops forwarded traffic to a serviceExternalIPs address that no Service
    # claims (its cali-cidr-block chain, before kube-proxy's rules): a node or switch
    # address in such a range would be cut off from every pod (docs/calico.md).
    own_range = "give ingress a range of its own in cluster.calico.advertise.external_cidrs"
    fix = (
        "Felix (calico-node) drops traffic pods send to these ranges unless a Service "
        f"claims the address, so pods could not reach it; {own_range}"
    )
    ranges = topology.external_ranges(inv)
    holders = _holders(inv) if ranges else []
    k8s = inv.cluster.kubernetes
    for cidr, where in ranges:
        net = ipam.parse_network(cidr)
        if net is None:
            continue  # LAB011
        held: dict[ipam.IPAddress, list[str]] = {}
        for ip, who in holders:
            if ip in net:
                names = held.setdefault(ip, [])
                if who not in names:
                    names.append(who)
        if held:
            listed = [f"{ip} ({', '.join(held[ip])})" for ip in sorted(held)]
            shown = listed if len(listed) <= 8 else listed[:6]
            more = f" and {len(listed) - len(shown)} more" if len(listed) > len(shown) else ""
            yield (
                where,
                f"serviceExternalIPs range {net} holds {', '.join(shown)}{more}: {fix}",
            )
        for field, what in (("pod_cidr", "pod CIDR"), ("service_cidr", "service CIDR")):
            other = ipam.parse_network(getattr(k8s, field))
            if other is not None and other.version == net.version and net.overlaps(other):
                yield (
                    where,
                    f"serviceExternalIPs range {net} overlaps the {what} "
                    f"{other} (cluster.kubernetes.{field}): Calico would announce those "
                    f"addresses as ingress and Felix drop pods' traffic to them; {own_range}",
                )
