"""Grafana dashboards for the lab, one per area, from the inventory (pure).

Power (every BMC and PDU, each PDU's panel naming what its outlets feed), BGP (one
panel per switch whose sessions are read, naming the sessions the inventory
implies), etcd, Ceph and nodes, with the inventory's counts drawn as thresholds
(etcd's and the monitors' quorum, the OSD count). The JSON follows Grafana's
dashboard kind (schemaVersion 36: docs/sources/developers/kinds/core/dashboard in
Grafana's repository); Grafana publishes that kind as CUE, not as a JSON Schema, so
the tests check the fields it documents as required, and run every panel's query
through promtool. Grafana itself (AGPL) is never run or vendored: the operator
imports the files (docs/monitoring.md).
"""

from __future__ import annotations

from typing import Any

from labctl.inventory.model import Inventory
from labctl.inventory.topology import sessions, switch_sessions
from labctl.render import ceph as ceph_render
from labctl.render import etcd as etcd_render
from labctl.render.monitoring.rules import quorum
from labctl.render.monitoring.targets import bgp_switches

SCHEMA_VERSION = 36
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH, HEIGHT = 12, 8


def _panel(
    title: str,
    exprs: list[tuple[str, str]],
    description: str = "",
    unit: str = "short",
    kind: str = "timeseries",
    threshold: float | None = None,
) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if threshold is not None:
        steps.append({"color": "red", "value": threshold})
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "expr": expr,
                "legendFormat": legend,
                "datasource": DATASOURCE,
            }
            for i, (expr, legend) in enumerate(exprs)
        ],
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {},
    }


def _dashboard(
    inv: Inventory, area: str, title: str, panels: list[dict[str, Any]]
) -> dict[str, Any]:
    placed = []
    for i, panel in enumerate(panels):
        grid = {"h": HEIGHT, "w": WIDTH, "x": (i % 2) * WIDTH, "y": (i // 2) * HEIGHT}
        placed.append({"id": i + 1, "gridPos": grid, **panel})
    return {
        "uid": f"labctl-{inv.lab.name}-{area}"[:40],
        "title": f"{inv.lab.name}: {title}",
        "tags": ["labctl", inv.lab.name, area],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "time": {"from": "now-6h", "to": "now"},
        "refresh": inv.cluster.monitoring.scrape_interval,
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "hide": 0,
                }
            ]
        },
        "annotations": {"list": []},
        "links": [],
        "panels": placed,
    }


def _power(inv: Inventory) -> list[dict[str, Any]]:
    panels = [
        _panel(
            "BMCs answering",
            [('up{job="ipmi"}', "{{instance}}")],
            "1: the IPMI exporter reads the BMC.",
        ),
        _panel(
            "Chassis power", [("ipmi_chassis_power_state", "{{instance}}")], "1: on, 0: off (IPMI)."
        ),
    ]
    for pdu in inv.pdus:
        wiring = ", ".join(f"outlet {o.outlet}: {o.device} PSU {o.psu}" for o in pdu.outlets)
        sel = f'job="snmp-pdu", instance="{pdu.name}"'
        panels.append(
            _panel(
                f"{pdu.name} ({pdu.model})",
                [
                    (f"up{{{sel}}}", "answering"),
                    (f"pdu_bank_current_deciamps{{{sel}}} / 10", "amps {{bank}}"),
                    (f"pdu_bank_threshold_deciamps{{{sel}}} / 10", "alarm threshold"),
                    (f"pdu_outlet_state{{{sel}}}", "outlet {{outlet}}"),
                ],
                f"Wiring from the inventory: {wiring or 'none recorded'}.",
            )
        )
    return panels


def _bgp(inv: Inventory) -> list[dict[str, Any]]:
    panels = []
    for sw in bgp_switches(inv):
        implied = ", ".join(f"{s.node} {s.local_address}" for s in switch_sessions(inv, sw.name))
        panels.append(
            _panel(
                f"{sw.name} BGP sessions",
                [(f'bgp_peer_state{{job="snmp-bgp", instance="{sw.name}"}}', "{{peer}}")],
                f"6 is Established. Sessions the inventory implies: {implied}.",
            )
        )
    for server in inv.servers:  # each node's side, from its BGP exporter
        implied = ", ".join(f"{s.protocol} ({s.peer})" for s in sessions(inv, node=server.name))
        if not implied:
            continue
        panels.append(
            _panel(
                f"{server.name} BGP sessions (calico-node's BIRD)",
                [
                    (
                        f'bird_protocol_up{{job="bird", instance="{server.name}", proto="BGP"}}',
                        "{{name}} {{state}}",
                    )
                ],
                f"1 is up (Established). Sessions the inventory implies: {implied}.",
            )
        )
    return panels


def _etcd(inv: Inventory) -> list[dict[str, Any]]:
    members = len(etcd_render.members(inv))
    return [
        _panel(
            "Members up",
            [('sum(up{job="etcd"})', "up")],
            f"{members} members; quorum needs {quorum(members)}.",
            kind="stat",
        ),
        _panel("Has a leader", [('etcd_server_has_leader{job="etcd"}', "{{instance}}")]),
        _panel(
            "Leader changes",
            [('increase(etcd_server_leader_changes_seen_total{job="etcd"}[1h])', "{{instance}}")],
        ),
        _panel(
            "Database size",
            [('etcd_mvcc_db_total_size_in_bytes{job="etcd"}', "{{instance}}")],
            unit="bytes",
        ),
    ]


def _ceph(inv: Inventory) -> list[dict[str, Any]]:
    mons, osds = len(ceph_render.mons(inv)), len(ceph_render.osds(inv))
    pools = (
        ", ".join(f"{p.name} (size {p.size})" for p in inv.cluster.ceph.pools)
        if inv.cluster.ceph
        else ""
    )
    inactive = "(ceph_pg_total - ceph_pg_active) * on(pool_id) group_left(name) ceph_pool_metadata"
    return [
        _panel("Health", [("ceph_health_status", "0 ok, 1 warn, 2 err")], kind="stat", threshold=1),
        _panel(
            "Monitors in quorum",
            [("sum(ceph_mon_quorum_status)", "in quorum")],
            f"{mons} monitors; quorum needs {quorum(mons)}.",
            kind="stat",
        ),
        _panel(
            "OSDs up", [("sum(ceph_osd_up)", "up")], f"The inventory has {osds} OSDs.", kind="stat"
        ),
        _panel("Inactive placement groups per pool", [(inactive, "{{name}}")], f"Pools: {pools}."),
    ]


def _nodes(inv: Inventory) -> list[dict[str, Any]]:
    names = ", ".join(s.name for s in inv.servers)
    return [
        _panel("node-exporter up", [('up{job="node"}', "{{instance}}")], f"Servers: {names}."),
        _panel("kubelet up", [('up{job="kubelet"}', "{{instance}}")]),
        _panel("Load (1 min)", [('node_load1{job="node"}', "{{instance}}")]),
        _panel(
            "Memory available",
            [('node_memory_MemAvailable_bytes{job="node"}', "{{instance}}")],
            unit="bytes",
        ),
    ]


def dashboards(inv: Inventory) -> dict[str, dict[str, Any]]:
    """Area name to dashboard JSON; an area with nothing to show is left out."""
    areas = {
        "power": ("Power: BMCs and PDUs", _power(inv)),
        "bgp": ("BGP sessions on the switches and the nodes", _bgp(inv)),
        "etcd": ("etcd", _etcd(inv)),
        "ceph": ("Ceph", _ceph(inv) if inv.cluster.ceph is not None else []),
        "nodes": ("Nodes", _nodes(inv)),
    }
    return {
        area: _dashboard(inv, area, title, panels)
        for area, (title, panels) in areas.items()
        if panels
    }
