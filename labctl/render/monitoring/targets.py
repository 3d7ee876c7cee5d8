"""What Prometheus scrapes, listed once from the inventory (pure).

prometheus.yml's jobs, the rules' counts and, later, the test that compares
Prometheus's ``/api/v1/targets`` with the inventory all read this list, so they
cannot disagree about what should be up. A target is a job, the name it is known
by (the ``instance`` label: a server, PDU or switch name) and the address dialled.
"""

from __future__ import annotations

from dataclasses import dataclass

from labctl.inventory.export import primary_address
from labctl.inventory.model import Inventory, Server, Switch
from labctl.inventory.topology import switch_sessions
from labctl.render import ceph as ceph_render
from labctl.render import etcd as etcd_render

NODE_EXPORTER_PORT = 9100
BIRD_EXPORTER_PORT = 9324  # bird_exporter's default (Prometheus's port allocations)
CEPH_MGR_PORT = 9283  # the mgr prometheus module's default
PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
# Secure ports of the control-plane components and the kubelet (labctl/render/kubernetes).
CONTROLLER_MANAGER_PORT = 10257
SCHEDULER_PORT = 10259
KUBELET_PORT = 10250


@dataclass(frozen=True)
class Target:
    job: str
    instance: str
    address: str  # host:port dialled (for exporter jobs: the device the exporter asks)


def _reached(inv: Inventory, server: Server) -> str:
    found = primary_address(server, inv)
    if found is None:  # LAB056 refuses such an inventory; this says why if one slips by
        raise ValueError(f"{server.name} has no address Prometheus could scrape")
    return found


def monitoring_servers(inv: Inventory) -> list[Server]:
    """Where Prometheus and Alertmanager run: cluster.monitoring.servers, else the
    control plane; none when they run on the operator's machine."""
    mon = inv.cluster.monitoring
    if mon.operator:
        return []
    if mon.servers:
        return [inv.server(name) for name in mon.servers]
    return inv.with_role("control-plane")


def bgp_switches(inv: Inventory) -> list[Switch]:
    """Switches whose BGP sessions the SNMP exporter reads: SNMP set and a session implied."""
    return [
        sw
        for sw in inv.switches
        if sw.snmp is not None and sw.management is not None and switch_sessions(inv, sw.name)
    ]


def unwatched_bgp(inv: Inventory) -> list[tuple[str, str]]:
    """Switches holding sessions the inventory implies whose BGP no target reads, each
    with why: Prometheus reads BGP only through the SNMP exporter (BGP4-MIB), and a
    switch read over SSH (``ssh-frr``) has no metrics source, so its own view of its
    sessions is watched by ``labctl bgp status`` alone, not by BgpSessionNotEstablished
    (each node's side of them is, by the BGP exporter: CalicoBgpSessionNotEstablished)."""
    read = {sw.name for sw in bgp_switches(inv)}
    out = []
    for sw in inv.switches:
        if sw.name in read or not switch_sessions(inv, sw.name):
            continue
        how = f"read over SSH ({sw.bgp_source})" if sw.bgp_source else "not read by labctl"
        out.append(
            (
                sw.name,
                f"{how}, not SNMP: no alert watches its side of its BGP sessions (the "
                "nodes' side is, CalicoBgpSessionNotEstablished); `bgp_status: snmp` "
                "with its snmp settings makes the SNMP exporter read it (FRR: frr-snmp's "
                "AgentX, docs/calico.md)",
            )
        )
    return out


def targets(inv: Inventory) -> list[Target]:
    """Every target the inventory implies, in job order then inventory order."""
    out: list[Target] = []
    for s in monitoring_servers(inv):
        out.append(Target("prometheus", s.name, f"{_reached(inv, s)}:{PROMETHEUS_PORT}"))
    if inv.cluster.monitoring.operator:
        out.append(Target("prometheus", "operator", f"127.0.0.1:{PROMETHEUS_PORT}"))
    for s in monitoring_servers(inv):
        out.append(Target("alertmanager", s.name, f"{_reached(inv, s)}:{ALERTMANAGER_PORT}"))
    if inv.cluster.monitoring.operator:
        out.append(Target("alertmanager", "operator", f"127.0.0.1:{ALERTMANAGER_PORT}"))
    for s in inv.servers:
        out.append(Target("node", s.name, f"{_reached(inv, s)}:{NODE_EXPORTER_PORT}"))
    for s in inv.servers:  # every server runs calico-node, so BIRD (topology.nodes)
        out.append(Target("bird", s.name, f"{_reached(inv, s)}:{BIRD_EXPORTER_PORT}"))
    for s in inv.servers:
        out.append(Target("ipmi", s.name, f"{s.bmc.address}:{s.bmc.port}"))
    for p in inv.pdus:
        out.append(Target("snmp-pdu", p.name, f"{p.address}:{p.snmp.port}"))
    for sw in bgp_switches(inv):
        assert sw.management is not None and sw.snmp is not None
        out.append(Target("snmp-bgp", sw.name, f"{sw.management.address}:{sw.snmp.port}"))
    if inv.cluster.ceph is not None:
        public = inv.cluster.ceph.public_network
        for s in ceph_render.managers(inv):
            address = ceph_render.address(inv, s, public)
            out.append(Target("ceph", s.name, f"{address}:{CEPH_MGR_PORT}"))
    for s in etcd_render.members(inv):
        address = etcd_render.address(inv, s)
        out.append(Target("etcd", s.name, f"{address}:{inv.cluster.etcd.client_port}"))
    api = inv.cluster.kubernetes.api_endpoint
    out.append(Target("apiserver", api.name, f"{api.address}:{api.port}"))
    for job, port in (
        ("controller-manager", CONTROLLER_MANAGER_PORT),
        ("scheduler", SCHEDULER_PORT),
    ):
        for s in inv.with_role("control-plane"):
            out.append(Target(job, s.name, f"{_reached(inv, s)}:{port}"))
    for s in inv.servers:
        out.append(Target("kubelet", s.name, f"{_reached(inv, s)}:{KUBELET_PORT}"))
    return out
