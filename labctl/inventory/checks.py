"""Semantic checks: what the schema cannot say about an inventory.

Each check has a stable id (``LAB0NN``), one severity and a one-line summary;
``docs/checks.md`` is generated from this registry. A check is a pure function
of the inventory yielding ``Finding``s; ``run_checks`` turns them into positioned
``Problem``s. Ids are never reused: retire a check, don't renumber.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator

from labctl.inventory import ipam
from labctl.inventory.load import SourceMap
from labctl.inventory.model import Inventory, SecretRef, Server
from labctl.inventory.problems import DocPath, Problem

# REGISTRY is read through this module: importing it registers every check.
from labctl.inventory.registry import REGISTRY as REGISTRY
from labctl.inventory.registry import E, Finding, W, check

# \Z, not $: "$" also matches before a final newline, and a MAC reaches dnsmasq and
# systemd-networkd files.
MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}\Z")
SECRET_FIELDS = ("password", "auth_key", "priv_key", "community")


# -- names -------------------------------------------------------------------


def _duplicates(items: Iterable[tuple[str, DocPath]], what: str) -> Iterator[Finding]:
    seen: dict[str, DocPath] = {}
    for name, path in items:
        if name in seen:
            yield (
                (*path, "name"),
                f"{what} name '{name}' is used twice (also at {_fmt(seen[name])})",
            )
        else:
            seen[name] = path


def _fmt(path: DocPath) -> str:
    from labctl.inventory.problems import format_path

    return format_path(path)


@check("LAB010", E, "Names are unique: networks; servers, switches and PDUs; pools; NICs.")
def unique_names(inv: Inventory) -> Iterator[Finding]:
    yield from _duplicates(((n.name, n.path) for n in inv.networks), "network")
    devices = [(s.name, s.path) for s in inv.servers]
    devices += [(s.name, s.path) for s in inv.switches]
    devices += [(p.name, p.path) for p in inv.pdus]
    yield from _duplicates(devices, "device")
    for server in inv.servers:
        yield from _duplicates(((n.name, n.path) for n in server.nics), f"{server.name}: NIC")
    if inv.cluster.ceph:
        yield from _duplicates(((p.name, p.path) for p in inv.cluster.ceph.pools), "pool")


# -- addresses ---------------------------------------------------------------


@check("LAB011", E, "Every CIDR and address parses (a CIDR has no host bits set).")
def parsable_addresses(inv: Inventory) -> Iterator[Finding]:
    for n in inv.networks:
        if ipam.parse_network(n.cidr) is None:
            yield (*n.path, "cidr"), _bad_cidr(n.cidr)
        for i, dns in enumerate(n.dns):
            if ipam.parse_address(dns) is None:
                yield (*n.path, "dns", i), f"'{dns}' is not an IP address"
    for a in ipam.assignments(inv):
        if ipam.parse_address(a.address) is None:
            yield a.path, f"'{a.address}' is not an IP address"
    k = inv.cluster.kubernetes
    for field in ("pod_cidr", "service_cidr"):
        value = getattr(k, field)
        if ipam.parse_network(value) is None:
            yield ("cluster", "kubernetes", field), _bad_cidr(value)
    if ipam.parse_address(k.api_endpoint.address) is None:
        yield (
            ("cluster", "kubernetes", "api_endpoint", "address"),
            f"'{k.api_endpoint.address}' is not an IP address",
        )
    for i, cidr in enumerate(inv.cluster.calico.advertise.external_cidrs):
        if ipam.parse_network(cidr) is None:
            yield ("cluster", "calico", "advertise", "external_cidrs", i), _bad_cidr(cidr)


def _bad_cidr(text: str) -> str:
    try:
        import ipaddress

        fixed = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return f"'{text}' is not a network in CIDR notation (like 10.0.0.0/24)"
    return f"'{text}' has host bits set; did you mean {fixed}?"


def _networks(inv: Inventory) -> dict[str, ipam.IPNetwork]:
    """Parsed networks by name; the first definition wins (LAB010 reports the others)."""
    out: dict[str, ipam.IPNetwork] = {}
    for n in inv.networks:
        net = ipam.parse_network(n.cidr)
        if net is not None:
            out.setdefault(n.name, net)
    return out


def _purposes(inv: Inventory) -> dict[str, str]:
    out: dict[str, str] = {}
    for n in inv.networks:
        out.setdefault(n.name, n.purpose)
    return out


@check("LAB012", E, "Every address lies inside the network it names.")
def address_in_network(inv: Inventory) -> Iterator[Finding]:
    nets = _networks(inv)
    for a in ipam.assignments(inv):
        net, ip = nets.get(a.network), ipam.parse_address(a.address)
        if net is not None and ip is not None and ip not in net:
            yield a.path, f"{a.address} ({a.owner}) is not inside network {a.network} ({net})"


@check("LAB013", E, "No address is its network's network or broadcast address.")
def address_not_reserved(inv: Inventory) -> Iterator[Finding]:
    nets = _networks(inv)
    for a in ipam.assignments(inv):
        net, ip = nets.get(a.network), ipam.parse_address(a.address)
        if net is not None and ip is not None and ip in net and ipam.is_reserved_in(ip, net):
            kind = "network" if ip == net.network_address else "broadcast"
            yield a.path, f"{a.address} ({a.owner}) is the {kind} address of {a.network} ({net})"


@check("LAB014", E, "No address is given to two things (gateways included).")
def address_unique(inv: Inventory) -> Iterator[Finding]:
    seen: dict[str, str] = {}
    for n in inv.networks:
        if n.gateway:
            seen[n.gateway] = f"the gateway of {n.name}"
    boot = inv.lab.boot
    boot_ip = ipam.parse_address(boot.address) if boot else None
    if boot_ip is not None:  # the operator's machine answers there: the address is taken
        seen.setdefault(str(boot_ip), "the boot service (lab.boot.address)")
    for a in ipam.assignments(inv):
        ip = ipam.parse_address(a.address)
        key = str(ip) if ip is not None else a.address
        if key in seen:
            yield a.path, f"{a.address} ({a.owner}) is already used by {seen[key]}"
        else:
            seen[key] = a.owner


def _macs(inv: Inventory) -> Iterator[tuple[str, str, DocPath]]:
    for s in inv.servers:
        for nic in s.nics:
            yield nic.mac, f"{s.name} {nic.name}", (*nic.path, "mac")
        if s.bmc.mac:
            yield s.bmc.mac, f"{s.name} BMC", (*s.bmc.path, "mac")


@check("LAB015", E, "Every MAC address has the form aa:bb:cc:dd:ee:ff.")
def mac_form(inv: Inventory) -> Iterator[Finding]:
    for mac, owner, path in _macs(inv):
        if not MAC_RE.match(mac):
            yield path, f"'{mac}' ({owner}) is not a MAC address like aa:bb:cc:dd:ee:ff"


@check("LAB016", E, "No MAC address is used twice.")
def mac_unique(inv: Inventory) -> Iterator[Finding]:
    seen: dict[str, str] = {}
    for mac, owner, path in _macs(inv):
        key = mac.lower()
        if key in seen:
            yield path, f"MAC {mac} ({owner}) is already used by {seen[key]}"
        else:
            seen[key] = owner


@check("LAB017", E, "No MAC address is multicast or all zeros (no NIC has one).")
def mac_unicast(inv: Inventory) -> Iterator[Finding]:
    for mac, owner, path in _macs(inv):
        if MAC_RE.match(mac):
            first = int(mac[:2], 16)
            if first & 1:
                yield path, f"MAC {mac} ({owner}) is a multicast address; a NIC cannot have it"
            elif mac.replace(":", "") == "0" * 12:
                yield path, f"MAC {mac} ({owner}) is all zeros"


# -- networks ----------------------------------------------------------------


@check("LAB020", E, "A gateway lies inside its network and is not its network/broadcast.")
def gateway_in_network(inv: Inventory) -> Iterator[Finding]:
    for n in inv.networks:
        net = ipam.parse_network(n.cidr)
        if not n.gateway or net is None:
            continue
        gw = ipam.parse_address(n.gateway)
        path = (*n.path, "gateway")
        if gw is None:
            yield path, f"gateway '{n.gateway}' is not an IP address"
        elif gw not in net:
            yield path, f"gateway {gw} is not inside {n.name} ({net})"
        elif ipam.is_reserved_in(gw, net):
            yield path, f"gateway {gw} is the network or broadcast address of {n.name} ({net})"


@check("LAB021", E, "Networks do not overlap unless one lists the other in `overlaps`.")
def networks_disjoint(inv: Inventory) -> Iterator[Finding]:
    parsed = [(n, ipam.parse_network(n.cidr)) for n in inv.networks]
    valid = [(n, net) for n, net in parsed if net is not None]
    for i, (a, net_a) in enumerate(valid):
        for b, net_b in valid[:i]:
            if net_a.version != net_b.version or not net_a.overlaps(net_b):
                continue
            if b.name in a.overlaps or a.name in b.overlaps:
                continue
            yield (
                (*a.path, "cidr"),
                f"network {a.name} ({net_a}) overlaps {b.name} ({net_b}); "
                f"declare it with `overlaps: [{b.name}]` if that is intended",
            )


@check("LAB022", E, "Pod and service CIDRs overlap no network and not each other.")
def cluster_cidrs_disjoint(inv: Inventory) -> Iterator[Finding]:
    k = inv.cluster.kubernetes
    pod, svc = ipam.parse_network(k.pod_cidr), ipam.parse_network(k.service_cidr)
    base = ("cluster", "kubernetes")
    for label, net, field in (("pod", pod, "pod_cidr"), ("service", svc, "service_cidr")):
        if net is None:
            continue
        for n in inv.networks:
            other = ipam.parse_network(n.cidr)
            if other is not None and other.version == net.version and net.overlaps(other):
                yield (*base, field), f"{label} CIDR {net} overlaps network {n.name} ({other})"
    if pod and svc and pod.version == svc.version and pod.overlaps(svc):
        yield (*base, "service_cidr"), f"service CIDR {svc} overlaps the pod CIDR {pod}"


# -- references --------------------------------------------------------------


@check("LAB030", E, "Every network a field names exists.")
def network_refs(inv: Inventory) -> Iterator[Finding]:
    names = {n.name for n in inv.networks}
    for a in ipam.assignments(inv):
        if a.network not in names:
            path = (*a.path[:-1], "network") if a.path[-1] == "address" else (*a.path, "network")
            yield path, f"{a.owner} names network '{a.network}', which is not defined"
    for n in inv.networks:
        for i, other in enumerate(n.overlaps):
            if other not in names:
                yield (*n.path, "overlaps", i), f"overlaps names unknown network '{other}'"
    ceph = inv.cluster.ceph
    if ceph:
        for field in ("public_network", "cluster_network"):
            value = getattr(ceph, field)
            if value and value not in names:
                yield ("cluster", "ceph", field), f"ceph {field} '{value}' is not a defined network"


@check("LAB031", E, "Every switch a NIC is cabled to exists.")
def switch_refs(inv: Inventory) -> Iterator[Finding]:
    names = {s.name for s in inv.switches}
    for s in inv.servers:
        for nic in s.nics:
            if nic.switch and nic.switch not in names:
                yield (
                    (*nic.path, "switch"),
                    f"{s.name} {nic.name}: switch '{nic.switch}' is not defined",
                )


@check("LAB032", E, "Every switch port a NIC is cabled to is listed on that switch.")
def port_refs(inv: Inventory) -> Iterator[Finding]:
    ports = {s.name: {p.name for p in s.ports} for s in inv.switches}
    for s in inv.servers:
        for nic in s.nics:
            if nic.switch in ports and nic.port and nic.port not in ports[nic.switch]:
                yield (
                    (*nic.path, "port"),
                    f"{s.name} {nic.name}: switch {nic.switch} has no port '{nic.port}' "
                    "in its ports list",
                )


@check("LAB033", E, "Every device plugged into a PDU outlet exists.")
def outlet_refs(inv: Inventory) -> Iterator[Finding]:
    devices = {s.name for s in inv.servers} | {s.name for s in inv.switches}
    for pdu in inv.pdus:
        for o in pdu.outlets:
            if o.device not in devices:
                yield (
                    (*o.path, "device"),
                    f"{pdu.name} outlet {o.outlet}: no server or switch named '{o.device}'",
                )


@check("LAB034", E, "A switch port is cabled to at most one NIC.")
def port_once(inv: Inventory) -> Iterator[Finding]:
    seen: dict[tuple[str, str], str] = {}
    for s in inv.servers:
        for nic in s.nics:
            if nic.switch and nic.port:
                key = (nic.switch, nic.port)
                if key in seen:
                    yield (
                        (*nic.path, "port"),
                        f"{nic.switch} {nic.port} is already cabled to {seen[key]}",
                    )
                else:
                    seen[key] = f"{s.name} {nic.name}"


@check("LAB035", E, "A PDU outlet feeds at most one power supply.")
def outlet_once(inv: Inventory) -> Iterator[Finding]:
    for pdu in inv.pdus:
        seen: dict[int, str] = {}
        for o in pdu.outlets:
            if o.outlet in seen:
                yield (
                    (*o.path, "outlet"),
                    f"{pdu.name} outlet {o.outlet} already feeds {seen[o.outlet]}",
                )
            else:
                seen[o.outlet] = f"{o.device} PSU {o.psu}"


@check("LAB036", E, "A PDU outlet number is within the PDU's outlet_count.")
def outlet_in_range(inv: Inventory) -> Iterator[Finding]:
    for pdu in inv.pdus:
        for o in pdu.outlets:
            if o.outlet > pdu.outlet_count:
                yield (
                    (*o.path, "outlet"),
                    f"{pdu.name} has {pdu.outlet_count} outlets; there is no outlet {o.outlet}",
                )


@check("LAB037", E, "A CephFS names existing pools whose application is cephfs.")
def cephfs_pools(inv: Inventory) -> Iterator[Finding]:
    ceph = inv.cluster.ceph
    if not ceph:
        return
    pools = {p.name: p for p in ceph.pools}
    for fs in ceph.filesystems:
        for field in ("metadata_pool", "data_pool"):
            name = getattr(fs, field)
            pool = pools.get(name)
            if pool is None:
                yield (*fs.path, field), f"filesystem {fs.name}: pool '{name}' is not defined"
            elif pool.application != "cephfs":
                yield (
                    (*fs.path, field),
                    f"filesystem {fs.name}: pool '{name}' has application "
                    f"{pool.application}, not cephfs",
                )


@check("LAB038", E, "A Calico BGP peer is a defined switch with asn and router_id.")
def calico_peers(inv: Inventory) -> Iterator[Finding]:
    switches = {s.name: s for s in inv.switches}
    for i, peer in enumerate(inv.cluster.calico.peers):
        name = peer.switch
        path = ("cluster", "calico", "peers", i, "switch")
        sw = switches.get(name)
        if sw is None:
            yield path, f"BGP peer '{name}' is not a defined switch"
        elif sw.asn is None or sw.router_id is None:
            yield path, f"BGP peer {name} needs both asn and router_id on the switch"


# -- clusters ----------------------------------------------------------------


def _members(inv: Inventory, role: str) -> list[Server]:
    return inv.with_role(role)


@check("LAB040", E, "At least one server has the etcd role.")
def etcd_present(inv: Inventory) -> Iterator[Finding]:
    if not _members(inv, "etcd"):
        yield ("servers",), "no server has the etcd role; Kubernetes needs an etcd cluster"


def _even_count(inv: Inventory, role: str, label: str) -> Iterator[Finding]:
    members = _members(inv, role)
    if members and len(members) % 2 == 0:
        names = ", ".join(s.name for s in members)
        yield (
            (*members[-1].path, "roles"),
            f"{label} has {len(members)} members ({names}); use an odd number",
        )


def _fewer_than_three(inv: Inventory, role: str, label: str) -> Iterator[Finding]:
    members = _members(inv, role)
    if 0 < len(members) < 3:
        yield (
            (*members[0].path, "roles"),
            f"{label} has {len(members)} member(s); it cannot lose any and keep quorum",
        )


@check("LAB041", E, "The etcd member count is odd (an even count adds no fault tolerance).")
def etcd_odd(inv: Inventory) -> Iterator[Finding]:
    return _even_count(inv, "etcd", "etcd")


@check("LAB042", W, "etcd has at least 3 members (fewer cannot survive losing one).")
def etcd_three(inv: Inventory) -> Iterator[Finding]:
    return _fewer_than_three(inv, "etcd", "etcd")


@check("LAB043", E, "The ceph-mon count is odd.")
def mon_odd(inv: Inventory) -> Iterator[Finding]:
    return _even_count(inv, "ceph-mon", "the Ceph monitor set")


@check("LAB044", W, "Ceph has at least 3 monitors.")
def mon_three(inv: Inventory) -> Iterator[Finding]:
    return _fewer_than_three(inv, "ceph-mon", "the Ceph monitor set")


@check("LAB045", E, "Ceph roles and cluster.ceph come together.")
def ceph_config(inv: Inventory) -> Iterator[Finding]:
    with_roles = [s for s in inv.servers if s.roles & {"ceph-mon", "ceph-osd", "ceph-mds"}]
    if with_roles and inv.cluster.ceph is None:
        yield (
            (*with_roles[0].path, "roles"),
            f"{with_roles[0].name} has Ceph roles but cluster.ceph is not set",
        )
    if inv.cluster.ceph is not None and not _members(inv, "ceph-mon"):
        yield ("cluster", "ceph"), "cluster.ceph is set but no server has the ceph-mon role"


@check("LAB046", E, "Every server has exactly one OS disk.")
def one_os_disk(inv: Inventory) -> Iterator[Finding]:
    for s in inv.servers:
        os_disks = [d for d in s.disks if d.role == "os"]
        if not os_disks:
            yield (
                (*s.path, "disks"),
                f"{s.name} has no disk with role os; CoreOS needs one to install on",
            )
        for d in os_disks[1:]:
            yield (
                (*d.path, "role"),
                f"{s.name} has more than one OS disk ({os_disks[0].device} and {d.device})",
            )


@check("LAB047", E, "A ceph-osd server has at least one OSD disk.")
def osd_has_disk(inv: Inventory) -> Iterator[Finding]:
    for s in inv.servers:
        if "ceph-osd" in s.roles and not any(d.role == "osd" for d in s.disks):
            yield (*s.path, "roles"), f"{s.name} has the ceph-osd role but no disk with role osd"


@check("LAB048", W, "OSD disks sit on servers with the ceph-osd role.")
def osd_disk_has_role(inv: Inventory) -> Iterator[Finding]:
    for s in inv.servers:
        if "ceph-osd" not in s.roles:
            for d in s.disks:
                if d.role == "osd":
                    yield (
                        (*d.path, "role"),
                        f"{s.name} {d.device} is an OSD disk but {s.name} lacks the ceph-osd role",
                    )


@check("LAB049", E, "A disk device is listed once per server (so an OSD is never the OS disk).")
def disk_once(inv: Inventory) -> Iterator[Finding]:
    for s in inv.servers:
        seen: dict[str, str] = {}
        for d in s.disks:
            if d.device in seen:
                yield (
                    (*d.path, "device"),
                    f"{s.name} lists {d.device} twice (roles {seen[d.device]} and {d.role})",
                )
            else:
                seen[d.device] = d.role
        for field in ("wwn", "serial"):
            owner: dict[str, str] = {}
            for d in s.disks:
                value = getattr(d, field)
                if value is None:
                    continue
                if value in owner:
                    yield (
                        (*d.path, field),
                        f"{s.name} gives {owner[value]} and {d.device} the one {field} "
                        f"{value}: they are the same disk, or one of them is a copying slip",
                    )
                else:
                    owner[value] = d.device


@check("LAB112", E, "A disk labctl may wipe is named by a stable reference (by-id, wwn or serial).")
def wipe_by_identity(inv: Inventory) -> Iterator[Finding]:
    for s in inv.servers:
        for d in s.disks:
            if d.wipe and not d.stable:
                yield (
                    (*d.path, "wipe"),
                    f"{s.name} {d.device} has wipe: true, but {d.device} is a kernel name, "
                    "which can move to another disk when the node is reinstalled or a disk "
                    f"is added, and labctl would then zero that disk: name it by its "
                    f"/dev/disk/by-id/... path (`ls -l /dev/disk/by-id` on {s.name} shows "
                    f"which names point at {d.device}), or give its wwn or serial",
                )


@check("LAB050", E, "At least one server has the control-plane role.")
def control_plane_present(inv: Inventory) -> Iterator[Finding]:
    if not _members(inv, "control-plane"):
        yield ("servers",), "no server has the control-plane role"


@check("LAB051", E, "A Ceph pool's size is at most the number of OSD hosts.")
def pool_size(inv: Inventory) -> Iterator[Finding]:
    # Ceph's default rule (the only one labctl writes) puts each replica on another
    # host: with fewer OSD hosts than replicas, the pool's PGs stay undersized forever.
    ceph = inv.cluster.ceph
    if not ceph:
        return
    hosts = len(_members(inv, "ceph-osd"))
    for p in ceph.pools:
        if p.size > hosts:
            yield (
                (*p.path, "size"),
                f"pool {p.name} wants {p.size} replicas, each on a different host, but only "
                f"{hosts} server(s) host OSDs: the pool could never be healthy; make its size "
                f"at most {hosts} or give the ceph-osd role to more servers",
            )


@check("LAB052", W, "CephFS needs a ceph-mds server, and ceph-mds servers need a CephFS.")
def mds_match(inv: Inventory) -> Iterator[Finding]:
    ceph = inv.cluster.ceph
    mds = _members(inv, "ceph-mds")
    if ceph and ceph.filesystems and not mds:
        yield (
            ("cluster", "ceph", "filesystems"),
            "a CephFS is defined but no server has the ceph-mds role",
        )
    if mds and not (ceph and ceph.filesystems):
        yield (
            (*mds[0].path, "roles"),
            f"{mds[0].name} has the ceph-mds role but no CephFS is defined",
        )


@check("LAB053", E, "The API endpoint, if a node's address, belongs to a control-plane node.")
def api_endpoint_owner(inv: Inventory) -> Iterator[Finding]:
    address = inv.cluster.kubernetes.api_endpoint.address
    owners = [s for s in inv.servers if any(a.address == address for a in s.addresses())]
    if len(owners) > 1:
        return  # two servers on one address: LAB014 says so; blaming either would mislead
    for s in owners:
        if "control-plane" not in s.roles:
            yield (
                ("cluster", "kubernetes", "api_endpoint", "address"),
                f"API endpoint {address} is {s.name}'s address, "
                f"but {s.name} is not a control-plane node",
            )


@check("LAB110", E, "cluster_dns lies in service_cidr and is not the kubernetes service's address.")
def cluster_dns_in_service_cidr(inv: Inventory) -> Iterator[Finding]:
    k = inv.cluster.kubernetes
    if k.cluster_dns is None:
        return
    path = ("cluster", "kubernetes", "cluster_dns")
    address, svc = ipam.parse_address(k.cluster_dns), ipam.parse_network(k.service_cidr)
    if address is None:
        yield path, f"cluster_dns {k.cluster_dns!r} is not an IP address"
    elif svc is not None and (address.version != svc.version or address not in svc):
        yield path, f"cluster_dns {address} is outside the service CIDR {svc}"
    elif svc is not None and address == svc.network_address + 1:
        yield path, f"cluster_dns {address} is the kubernetes service's own address"


@check("LAB111", E, "node_cidr_mask_size is longer than the pod CIDR's prefix.")
def node_mask_inside_pod_cidr(inv: Inventory) -> Iterator[Finding]:
    k = inv.cluster.kubernetes
    pod = ipam.parse_network(k.pod_cidr)
    if pod is not None and k.node_cidr_mask_size <= pod.prefixlen:
        yield (
            ("cluster", "kubernetes", "node_cidr_mask_size"),
            f"node_cidr_mask_size /{k.node_cidr_mask_size} leaves no room for more than one "
            f"node in the pod CIDR {pod}; it must be longer than /{pod.prefixlen}",
        )


@check("LAB113", W, "An upgrade's kubelet batch leaves a node to move the drained pods to.")
def kubelet_batch_leaves_a_node(inv: Inventory) -> Iterator[Finding]:
    batch = inv.cluster.kubernetes.upgrade.kubelet_batch
    planes = {s.name for s in inv.with_role("control-plane")}
    others = [s.name for s in inv.servers if s.name not in planes]
    if len(others) > 1 and batch >= len(others):
        yield (
            ("cluster", "kubernetes", "upgrade", "kubelet_batch"),
            f"kubelet_batch {batch} drains all {len(others)} nodes that are not control-plane "
            f"nodes ({', '.join(others)}) at once: their pods would have nowhere to go but the "
            f"control-plane nodes; use at most {len(others) - 1}",
        )


@check("LAB054", E, "A server PXE boots from at most one NIC.")
def one_pxe_nic(inv: Inventory) -> Iterator[Finding]:
    for s in inv.servers:
        pxe = [n for n in s.nics if n.pxe]
        for n in pxe[1:]:
            yield (
                (*n.path, "pxe"),
                f"{s.name} has more than one PXE NIC ({pxe[0].name} and {n.name})",
            )


@check("LAB055", W, "A server has a PXE NIC (else the OS layer cannot network-install it).")
def has_pxe_nic(inv: Inventory) -> Iterator[Finding]:
    for s in inv.servers:
        if not any(n.pxe for n in s.nics):
            yield (*s.path, "nics"), f"{s.name} has no NIC with pxe: true"


@check("LAB056", E, "A server has an address on a public or node network (to be reached).")
def reachable(inv: Inventory) -> Iterator[Finding]:
    purposes = _purposes(inv)
    for s in inv.servers:
        if not any(purposes.get(a.network) in ("public", "node") for a in s.addresses()):
            yield (*s.path, "nics"), f"{s.name} has no address on a public or node network"


# -- security and power --------------------------------------------------------


def _secrets(inv: Inventory) -> Iterator[tuple[SecretRef, DocPath]]:
    for s in inv.servers:
        yield s.bmc.password, (*s.bmc.path, "password")
    for p in inv.pdus:
        for field in ("auth_key", "priv_key", "community"):
            ref = getattr(p.snmp, field)
            if ref is not None:
                yield ref, (*p.path, "snmp", field)
    if inv.cluster.pki is not None:
        yield inv.cluster.pki.passphrase, ("cluster", "pki", "passphrase")
    calico = inv.cluster.calico
    if calico.mesh_password is not None:
        yield calico.mesh_password, ("cluster", "calico", "mesh_password")
    for peer in calico.peers:
        if peer.password is not None:
            yield peer.password, (*peer.path, "password")
    for r in inv.cluster.monitoring.receivers:
        if r.secret is not None:
            yield r.secret, (*r.path, r.secret_field)


_REDFISH_ONLY = ("scheme", "verify", "ca_file", "system")
_IPMI_ONLY = ("cipher_suites", "allow_insecure")


@check("LAB057", E, "A BMC's settings fit its type (Redfish's or IPMI's, not the other's).")
def bmc_fields_fit_type(inv: Inventory) -> Iterator[Finding]:
    for s in inv.servers:
        b = s.bmc
        foreign = _IPMI_ONLY if b.redfish else _REDFISH_ONLY
        for name in foreign:
            if name in b.given:
                yield (
                    (*b.path, name),
                    f"{s.name}'s BMC is type {b.type}: {name} is a setting of "
                    f"{'IPMI' if b.redfish else 'Redfish'} BMCs only; remove it",
                )
        if b.redfish and b.ca_file is not None and (b.scheme == "http" or not b.verify):
            why = "scheme is http" if b.scheme == "http" else "verify is false"
            yield (
                (*b.path, "ca_file"),
                f"{s.name}'s BMC has a ca_file but its {why}: the CA would never be used",
            )


@check("LAB058", W, "A Redfish BMC whose password could be read on the way is reported.")
def redfish_in_clear(inv: Inventory) -> Iterator[Finding]:
    for s in inv.servers:
        b = s.bmc
        if not b.redfish:
            continue
        if b.scheme == "http":
            yield (
                (*b.path, "scheme"),
                f"{s.name}'s BMC speaks Redfish over plain http: its password travels in "
                "clear text",
            )
        elif not b.verify:
            yield (
                (*b.path, "verify"),
                f"{s.name}'s BMC certificate is not checked (verify: false): anyone on the "
                "path can pose as the BMC and read its password; give ca_file instead",
            )


@check("LAB060", E, "Secrets are references ({env: ...} / {file: ...}), not literals.")
def no_literal_secrets(inv: Inventory) -> Iterator[Finding]:
    if inv.lab.allow_literal_secrets:
        return
    for ref, path in _secrets(inv):
        if ref.literal is not None:
            yield (
                path,
                "a secret is written in the file; use {env: NAME} or {file: PATH} "
                "(or set lab.allow_literal_secrets)",
            )


@check("LAB061", W, "Literal secrets, where allowed, are still reported.")
def literal_secrets_allowed(inv: Inventory) -> Iterator[Finding]:
    if not inv.lab.allow_literal_secrets:
        return
    for ref, path in _secrets(inv):
        if ref.literal is not None:
            yield path, "a secret is written in the file (allowed by lab.allow_literal_secrets)"


@check("LAB062", W, "A BMC allowing insecure IPMI (1.5, cipher 0) is reported.")
def insecure_bmc(inv: Inventory) -> Iterator[Finding]:
    for s in inv.servers:
        if s.bmc.allow_insecure or 0 in s.bmc.cipher_suites:
            yield (
                (*s.bmc.path, "allow_insecure"),
                f"{s.name}'s BMC allows sessions without integrity; they can be hijacked",
            )


@check("LAB063", W, "SNMP without authPriv strength (v2c, MD5, DES) is reported.")
def weak_snmp(inv: Inventory) -> Iterator[Finding]:
    users = [(p.name, p.path, p.snmp) for p in inv.pdus]
    users += [(s.name, s.path, s.snmp) for s in inv.switches if s.snmp is not None]
    for name, where, snmp in users:
        path = (*where, "snmp")
        if snmp.version == "2c":
            yield (*path, "version"), f"{name} uses SNMP v2c: the community travels in clear text"
        else:
            if snmp.auth_protocol == "md5":
                yield (*path, "auth_protocol"), f"{name} authenticates with MD5; prefer sha"
            if snmp.priv_protocol == "des":
                yield (*path, "priv_protocol"), f"{name} encrypts with DES; prefer aes"


@check("LAB064", W, "A BMC sits on a management network.")
def bmc_on_mgmt(inv: Inventory) -> Iterator[Finding]:
    purposes = _purposes(inv)
    for s in inv.servers:
        purpose = purposes.get(s.bmc.network)
        if purpose is not None and purpose != "management":
            yield (
                (*s.bmc.path, "network"),
                f"{s.name}'s BMC is on {s.bmc.network} ({purpose}), not a management network",
            )


@check("LAB065", W, "Every server is on a PDU outlet (else it cannot be hard power-cycled).")
def server_on_pdu(inv: Inventory) -> Iterator[Finding]:
    if not inv.pdus:
        return
    fed = {o.device for p in inv.pdus for o in p.outlets}
    for s in inv.servers:
        if s.name not in fed:
            yield s.path, f"{s.name} is on no PDU outlet; `power --via pdu` cannot reach it"


@check("LAB066", W, "A device's power supplies are spread over more than one PDU.")
def psus_spread(inv: Inventory) -> Iterator[Finding]:
    feeds: dict[str, list[tuple[str, DocPath]]] = defaultdict(list)
    for p in inv.pdus:
        for o in p.outlets:
            feeds[o.device].append((p.name, o.path))
    for device, outlets in feeds.items():
        pdus = Counter(name for name, _ in outlets)
        if len(outlets) > 1 and len(pdus) == 1:
            yield (
                outlets[-1][1],
                f"both power supplies of {device} are on {outlets[0][0]}: "
                "one PDU failure takes it down",
            )


@check("LAB067", W, "etcd members reboot one at a time (reboot_strategy etcd-lock or off).")
def coordinated_reboots(inv: Inventory) -> Iterator[Finding]:
    members = _members(inv, "etcd")
    if len(members) < 2:
        return
    for s in members:
        if s.os.reboot_strategy == "reboot":
            yield (
                (*s.path, "os"),
                f"{s.name} is an etcd member that reboots whenever an update is ready; "
                "use etcd-lock",
            )


@check("LAB068", W, "A NIC is not faster than the switch port it is cabled to.")
def speed_match(inv: Inventory) -> Iterator[Finding]:
    order = ["100M", "1G", "10G", "25G", "40G", "100G"]
    ports = {(sw.name, p.name): p for sw in inv.switches for p in sw.ports}
    for s in inv.servers:
        for nic in s.nics:
            port = ports.get((nic.switch or "", nic.port or ""))
            if port and port.speed and order.index(nic.speed) > order.index(port.speed):
                yield (
                    (*nic.path, "speed"),
                    f"{s.name} {nic.name} is {nic.speed} but "
                    f"{nic.switch} {nic.port} is {port.speed}",
                )


# -- etcd ----------------------------------------------------------------------


@check("LAB069", E, "etcd's network exists and every etcd member has an address on it.")
def etcd_network(inv: Inventory) -> Iterator[Finding]:
    network = inv.cluster.etcd.network
    if network is None:
        return
    where = ("cluster", "etcd", "network")
    if network not in _purposes(inv):
        yield where, f"etcd's network '{network}' is not one of the inventory's networks"
        return
    for s in _members(inv, "etcd"):
        if not s.addresses(network):
            yield where, f"etcd member {s.name} has no address on the network '{network}'"


# -- ceph ------------------------------------------------------------------------


def _ceph_servers(inv: Inventory) -> list[Server]:
    return [s for s in inv.servers if s.roles & {"ceph-mon", "ceph-osd", "ceph-mds"}]


@check("LAB080", E, "Every Ceph server has an address on Ceph's public (and cluster) network.")
def ceph_networks(inv: Inventory) -> Iterator[Finding]:
    ceph = inv.cluster.ceph
    if ceph is None:
        return
    networks = _purposes(inv)
    wanted = [("public_network", ceph.public_network, _ceph_servers(inv))]
    if ceph.cluster_network is not None:
        wanted.append(("cluster_network", ceph.cluster_network, _members(inv, "ceph-osd")))
    for field, network, servers in wanted:
        if network not in networks:
            continue  # LAB030 names the missing network
        for s in servers:
            if not s.addresses(network):
                yield (
                    ("cluster", "ceph", field),
                    f"{s.name} runs Ceph daemons but has no address on {field} '{network}'",
                )


def _osd_count(inv: Inventory) -> int:
    return sum(1 for s in _members(inv, "ceph-osd") for d in s.disks if d.role == "osd")


@check("LAB081", W, "PG replicas per OSD stay within max_pg_per_osd (mon_max_pg_per_osd).")
def pgs_per_osd(inv: Inventory) -> Iterator[Finding]:
    ceph = inv.cluster.ceph
    osds = _osd_count(inv)
    if ceph is None or osds == 0:
        return
    pgs = sum(p.pg_num or 0 for p in ceph.pools)
    replicas = sum((p.pg_num or 0) * p.size for p in ceph.pools)
    per_osd = replicas / osds
    if per_osd > ceph.max_pg_per_osd:
        yield (
            ("cluster", "ceph", "pools"),
            f"the pools ask for {pgs} PGs, {replicas} PG replicas over {osds} OSDs: "
            f"{per_osd:.0f} per OSD, above max_pg_per_osd {ceph.max_pg_per_osd} "
            "(Ceph refuses the pool that crosses it)",
        )


@check("LAB082", W, "A pool's pg_num is a power of two.")
def pg_power_of_two(inv: Inventory) -> Iterator[Finding]:
    ceph = inv.cluster.ceph
    for p in ceph.pools if ceph else ():
        if p.pg_num is not None and p.pg_num & (p.pg_num - 1):
            yield (
                (*p.path, "pg_num"),
                f"pool {p.name} has pg_num {p.pg_num}, not a power of two: "
                "its PGs come out uneven in size",
            )


def _whole_disk(device: str) -> str:
    """/dev/sda1 -> /dev/sda, /dev/nvme0n1p2 -> /dev/nvme0n1 (by-id paths stay as they are)."""
    if device.startswith("/dev/disk/"):
        return re.sub(r"-part[0-9]+$", "", device)
    if re.search(r"[0-9]n[0-9]+(p[0-9]+)?$", device):  # NVMe: nvme0n1, its partitions p1..
        return re.sub(r"p[0-9]+$", "", device)
    return re.sub(r"(?<=[a-z])[0-9]+$", "", device)


@check("LAB083", E, "An OSD disk is not the OS disk nor a partition of it.")
def osd_not_on_os_disk(inv: Inventory) -> Iterator[Finding]:
    for s in inv.servers:
        os_disks = {_whole_disk(d.device) for d in s.disks if d.role == "os"}
        for d in s.disks:
            if d.role == "osd" and _whole_disk(d.device) in os_disks:
                yield (
                    (*d.path, "device"),
                    f"{s.name} {d.device} is an OSD disk on the OS disk "
                    f"{_whole_disk(d.device)}: the OSD would take the whole disk",
                )


@check("LAB085", E, "A CephFS keeps its metadata and its data in different pools.")
def cephfs_distinct_pools(inv: Inventory) -> Iterator[Finding]:
    ceph = inv.cluster.ceph
    for fs in ceph.filesystems if ceph else ():
        if fs.metadata_pool == fs.data_pool:
            yield (
                (*fs.path, "data_pool"),
                f"CephFS {fs.name} puts metadata and data in the one pool "
                f"'{fs.data_pool}'; Ceph refuses that",
            )


@check("LAB086", E, "Ceph managers run on monitor servers: managers <= the ceph-mon count.")
def ceph_managers(inv: Inventory) -> Iterator[Finding]:
    ceph = inv.cluster.ceph
    mons = len(_members(inv, "ceph-mon"))
    if ceph is not None and ceph.managers is not None and mons and ceph.managers > mons:
        yield (
            ("cluster", "ceph", "managers"),
            f"cluster.ceph.managers is {ceph.managers} but only {mons} server(s) have the "
            "ceph-mon role, where managers run",
        )


# The BGP fabric's checks (LAB090-LAB099) live in their own module and register here,
# in id order (docs/checks.md lists the registry as it fills).
import labctl.inventory.checks_calico  # noqa: E402, F401

# -- os layer: network install -------------------------------------------------

FLATCAR_CHANNELS = ("alpha", "beta", "stable", "lts")
FCOS_CHANNELS = ("next", "testing", "stable")


@check("LAB100", E, "The boot service's network exists and its address lies inside it.")
def boot_network(inv: Inventory) -> Iterator[Finding]:
    boot = inv.lab.boot
    if boot is None:
        return
    networks = _networks(inv)
    if boot.network not in _purposes(inv):
        yield (
            ("lab", "boot", "network"),
            f"boot network '{boot.network}' is not one of the inventory's networks",
        )
        return
    address = ipam.parse_address(boot.address)
    network = networks.get(boot.network)
    if address is None:
        yield ("lab", "boot", "address"), f"boot address '{boot.address}' is not an IP address"
    elif network is not None and address not in network:
        yield (
            ("lab", "boot", "address"),
            f"boot address {boot.address} is outside the boot network {boot.network} ({network})",
        )


@check("LAB101", E, "With full DHCP, every server's PXE NIC has an address on the boot network.")
def pxe_address(inv: Inventory) -> Iterator[Finding]:
    boot = inv.lab.boot
    if boot is None or boot.dhcp != "full" or boot.network not in _purposes(inv):
        return  # an unknown boot network is LAB100's
    for s in inv.servers:
        for n in [n for n in s.nics if n.pxe][:1]:  # a second PXE NIC is LAB054's
            if not any(a.network == boot.network for a in n.addresses):
                yield (
                    (*n.path, "pxe"),
                    f"{s.name}'s PXE NIC {n.name} has no address on the boot network "
                    f"'{boot.network}', so full DHCP has none to hand it",
                )


@check("LAB102", W, "Servers are installed with at least one operator SSH key.")
def install_keys(inv: Inventory) -> Iterator[Finding]:
    if inv.lab.boot is not None and not inv.lab.ssh.authorized_keys:
        yield (
            ("lab", "ssh"),
            "lab.ssh.authorized_keys is empty: a server the os layer installs lets nobody log in",
        )


@check("LAB103", E, "A server's OS channel exists for its distribution.")
def os_channel(inv: Inventory) -> Iterator[Finding]:
    for s in inv.servers:
        allowed = FLATCAR_CHANNELS if s.os.distribution == "flatcar" else FCOS_CHANNELS
        if s.os.channel not in allowed:
            yield (
                (*s.path, "os", "channel"),
                f"{s.name}: {s.os.distribution} has no channel '{s.os.channel}' "
                f"(it has {', '.join(allowed)})",
            )


@check("LAB104", W, "The lab has a boot service (lab.boot), else the os layer cannot install.")
def has_boot_service(inv: Inventory) -> Iterator[Finding]:
    if inv.lab.boot is None and inv.servers:
        yield ("lab",), "no lab.boot: the os layer can check installed servers but install none"


# -- monitoring ------------------------------------------------------------------

_MON = ("cluster", "monitoring")
_DURATION_UNITS = {"y": 31536000, "w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}


def duration_seconds(text: str) -> float:
    """Seconds in a schema-valid duration (30s, 1h30m, 250ms)."""
    return sum(
        int(n) * _DURATION_UNITS[unit] for n, unit in re.findall(r"([0-9]+)(ms|[ywdhms])", text)
    )


@check("LAB130", E, "Monitoring servers are servers of the inventory, or the operator alone.")
def monitoring_servers(inv: Inventory) -> Iterator[Finding]:
    mon = inv.cluster.monitoring
    names = {s.name for s in inv.servers}
    for i, name in enumerate(mon.servers):
        if name not in names:
            yield (
                (*_MON, "servers", i),
                f"monitoring server {name!r} is not a server of this inventory "
                f"(servers: {', '.join(sorted(names))})",
            )
    if mon.operator and mon.servers:
        yield (
            (*_MON, "operator"),
            "monitoring runs on the operator's machine or on servers, not both: "
            "drop servers or operator",
        )


@check(
    "LAB131", E, "Each alert receiver names its secret (a webhook's token, an email's password)."
)
def receiver_secret(inv: Inventory) -> Iterator[Finding]:
    for r in inv.cluster.monitoring.receivers:
        if r.secret is None:
            yield (
                r.path,
                f"receiver {r.name!r} ({r.type}) has no {r.secret_field}: give it as "
                f"{r.secret_field}: {{env: NAME}} or {{file: PATH}}",
            )


@check("LAB132", E, "The scrape interval is more than zero.")
def scrape_interval_positive(inv: Inventory) -> Iterator[Finding]:
    mon = inv.cluster.monitoring
    if duration_seconds(mon.scrape_interval) <= 0:
        yield (
            (*_MON, "scrape_interval"),
            f"scrape_interval {mon.scrape_interval} is zero: Prometheus would never scrape; "
            "use a duration such as 30s",
        )


@check("LAB133", E, "Alert receiver names are unique.")
def receiver_names(inv: Inventory) -> Iterator[Finding]:
    yield from _duplicates(((r.name, r.path) for r in inv.cluster.monitoring.receivers), "receiver")


@check("LAB140", E, "A PDU's stagger between outlets is more than zero.")
def pdu_stagger_positive(inv: Inventory) -> Iterator[Finding]:
    for pdu in inv.pdus:
        if duration_seconds(pdu.stagger) <= 0:
            yield (
                (*pdu.path, "stagger"),
                f"PDU {pdu.name}: stagger {pdu.stagger} is zero: `labctl power restore` would "
                "switch every outlet at once and their inrush currents add up; use a duration "
                "such as 2s",
            )


# -- running -------------------------------------------------------------------


def run_checks(inv: Inventory, source: SourceMap) -> list[Problem]:
    problems: list[Problem] = []
    for c in REGISTRY.values():
        if c.fn is None:
            continue
        for path, message in c.fn(inv):
            problems.append(
                Problem(c.id, c.severity, message, source.file, source.value_at(path), path)
            )
    problems.sort(key=lambda p: (p.position.line if p.position else 0, p.check_id))
    return problems


def run_lab_checks(inv: Inventory, source: SourceMap, simulated: bool) -> list[Problem]:
    """The lab checks' findings for a real lab (``simulated`` False: they count) or the
    simulated one (notes: what a real lab would refuse, and what stands in for it)."""
    problems: list[Problem] = []
    for c in REGISTRY.values():
        if c.lab_fn is None:
            continue
        for path, message in c.lab_fn(inv, simulated):
            problems.append(
                Problem(c.id, c.severity, message, source.file, source.value_at(path), path)
            )
    problems.sort(key=lambda p: (p.position.line if p.position else 0, p.check_id))
    return problems
