"""Alerting rules written from the inventory, not generic ones.

Counts come from the model: etcd's member count and quorum, Ceph's monitors, OSDs
and each pool's size and min_size, the BGP sessions each switch and each node should
hold (``labctl.inventory.topology``). Each rule carries a ``runbook`` annotation, the
same line docs/monitoring.md gives; each is proven by a ``promtool test rules``
case that makes it fire and one that keeps it quiet (tests/unit/test_monitoring_tools.py).

Metric contracts: ``up`` (Prometheus), ``ipmi_up`` (the IPMI exporter),
``ceph_mon_quorum_status``/``ceph_osd_up``/``ceph_pg_*``/``ceph_pool_metadata``
(Ceph mgr's prometheus module), ``bgp_peer_state`` and ``pdu_*`` (our snmp.yml),
``bird_protocol_up{name, proto, state}`` (the BGP exporter on every node, reading
calico-node's BIRD: one series per protocol, 1 and ``state="Established"`` for a BGP
session that is; protocol names as calico-node's confd writes them, ``Mesh_10_0_0_2``,
``Node_...``, ``Global_...``, ``inventory/topology.py``),
``labctl_certificate_not_after_seconds`` (the node-exporter textfile the pki layer
writes on each node, ``pki/expiry.py``).
"""

from __future__ import annotations

from typing import Any

from labctl.inventory.model import Inventory
from labctl.inventory.topology import sessions, switch_sessions
from labctl.render import ceph as ceph_render
from labctl.render import etcd as etcd_render
from labctl.render.monitoring.paths import BIRD_SOCKET
from labctl.render.monitoring.targets import bgp_switches

CERT_DAYS = 30
BGP_ESTABLISHED = 6  # BGP4-MIB bgpPeerState established(6)


def quorum(members: int) -> int:
    return members // 2 + 1


def min_size(size: int) -> int:
    """Ceph's default min_size for a replicated pool: size - size/2 (2 of 3)."""
    return size - size // 2


def _rule(
    name: str,
    expr: str,
    for_: str,
    severity: str,
    summary: str,
    runbook: str,
    **labels: str,
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, **labels},
        "annotations": {"summary": summary, "runbook": runbook},
    }


def _quorum_rule(name: str, what: str, metric: str, members: int) -> dict[str, Any]:
    q = quorum(members)
    return _rule(
        name,
        f"(sum({metric}) or vector(0)) <= {q}",
        "1m",
        "critical",
        f"{what}: {{{{ $value }}}} of {members} members in quorum; quorum needs {q}, "
        "one more failure loses it",
        f"Bring the missing {what} members back before anything else is restarted "
        "(docs/monitoring.md).",
    )


def lab_rules(inv: Inventory) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    etcd = len(etcd_render.members(inv))
    if etcd:
        rules.append(_quorum_rule("EtcdQuorumAtRisk", "etcd", 'up{job="etcd"}', etcd))
    ceph = inv.cluster.ceph
    if ceph is not None:
        mons = len(ceph_render.mons(inv))
        if mons:
            rules.append(
                _quorum_rule("CephMonQuorumAtRisk", "Ceph monitor", "ceph_mon_quorum_status", mons)
            )
        osds = len(ceph_render.osds(inv))
        if osds:
            rules.append(
                _rule(
                    "CephOsdDown",
                    f"(sum(ceph_osd_up) or vector(0)) < {osds}",
                    "5m",
                    "warning",
                    f"{{{{ $value }}}} of the inventory's {osds} OSDs are up",
                    "Find the down OSD with `ceph osd tree down`; check its server, disk "
                    "and ceph-osd unit.",
                )
            )
        for pool in ceph.pools:
            need = min_size(pool.size)
            rules.append(
                _rule(
                    "CephPoolBelowMinSize",
                    "(ceph_pg_total - ceph_pg_active) * on(pool_id) group_left(name) "
                    f'ceph_pool_metadata{{name="{pool.name}"}} > 0',
                    "2m",
                    "critical",
                    f"pool {pool.name}: {{{{ $value }}}} placement groups inactive: fewer "
                    f"than min_size {need} of its {pool.size} copies are up; I/O to it blocks",
                    "Bring OSDs back (`ceph pg dump_stuck inactive`); never lower min_size "
                    "to 1 to unblock.",
                    pool=pool.name,
                )
            )
    rules.append(
        _rule(
            "BmcNotAnswering",
            # The BMC answering is bmc-info's read (the bmc collector); a BMC with no
            # sensor records (the sensors collector's ipmi_up 0) still answers.
            'up{job="ipmi"} == 0 or ipmi_up{job="ipmi", collector="bmc"} == 0',
            "2m",
            "warning",
            "{{ $labels.instance }}'s BMC does not answer IPMI",
            "Check the BMC's address and credentials with `labctl power status`; a BMC "
            "that stopped answering often needs a cold reset (PDU outlet cycle).",
        )
    )
    if inv.pdus:
        rules.append(
            _rule(
                "PduNotAnswering",
                'up{job="snmp-pdu"} == 0',
                "2m",
                "warning",
                "PDU {{ $labels.instance }} does not answer SNMP",
                "Check the PDU's network port and SNMPv3 user (`labctl power status`).",
            )
        )
        rules.append(
            _rule(
                "PduBankNearRatedLoad",
                'pdu_bank_load_state{job="snmp-pdu"} >= 3 or '
                '(pdu_bank_current_deciamps{job="snmp-pdu"} >= on(job, instance) '
                '(pdu_bank_threshold_deciamps{job="snmp-pdu"} > 0))',
                "5m",
                "warning",
                "PDU {{ $labels.instance }} is near its rated load",
                "Move a server's second PSU to the other PDU or power a server off; an "
                "overloaded bank trips its breaker and drops every outlet on it.",
            )
        )
    for sw in bgp_switches(inv):
        for s in switch_sessions(inv, sw.name):
            match = f'job="snmp-bgp", instance="{sw.name}", peer="{s.local_address}"'
            rules.append(
                _rule(
                    "BgpSessionNotEstablished",
                    f"bgp_peer_state{{{match}}} != {BGP_ESTABLISHED} "
                    f"or absent(bgp_peer_state{{{match}}})",
                    "3m",
                    "warning",
                    f"{sw.name}'s BGP session with {s.node} ({s.local_address}) is not Established",
                    "Compare `labctl bgp status` with the switch; a node's calico-node "
                    "down or a wrong ASN/password keeps the session idle.",
                    node=s.node,
                )
            )
    for session in sessions(inv):
        match = (
            f'job="bird", instance="{session.node}", name="{session.protocol}", '
            'proto="BGP", state="Established"'
        )
        rules.append(
            _rule(
                "CalicoBgpSessionNotEstablished",
                f"absent(bird_protocol_up{{{match}}} == 1)",
                "3m",
                "warning",
                f"{session.node}'s BGP session {session.protocol} with {session.peer} "
                f"({session.peer_address}) is not Established",
                f"On {session.node}: `birdcl -s {BIRD_SOCKET} show protocols all "
                f"{session.protocol}` (in calico-node), `labctl bgp status`; a peer down, "
                "its calico-node stopped, or a wrong ASN/password keeps it idle.",
                # absent() keeps no label of its selector, so neither the labels nor the
                # annotations can name the session through $labels: each rule says it.
                instance=session.node,
                protocol=session.protocol,
                peer=session.peer,
            )
        )
    rules.append(
        _rule(
            "NodeDown",
            'up{job="node"} == 0',
            "1m",
            "critical",
            "{{ $labels.instance }} does not answer (node-exporter down)",
            "Check power (`labctl power status`) and the console; then the node's network.",
        )
    )
    rules.append(
        _rule(
            "NodeNotReady",
            'up{job="kubelet"} == 0',
            "1m",
            "critical",
            "{{ $labels.instance }}'s kubelet does not answer: the node goes NotReady",
            "`kubectl describe node`; on the node `systemctl status kubelet` and its journal.",
        )
    )
    rules.append(
        _rule(
            "LabctlCertificateExpiring",
            f"labctl_certificate_not_after_seconds - time() < {CERT_DAYS} * 86400",
            "10m",
            "warning",
            "certificate {{ $labels.certificate }} ({{ $labels.path }}) on "
            "{{ $labels.instance }} expires within "
            f"{CERT_DAYS} days",
            "Run `labctl pki mint` (it re-mints what expires within renew_within_days) and "
            "bootstrap the pki layer.",
        )
    )
    return rules


def alert_rules(inv: Inventory) -> dict[str, Any]:
    """The rules file: ``lab_rules``, each alert's ``for:`` replaced where the inventory's
    ``cluster.monitoring.alert_for`` names it (an operator's, or a test's short one)."""
    wanted = dict(inv.cluster.monitoring.alert_for)
    rules = [{**r, "for": wanted.get(r["alert"], r["for"])} for r in lab_rules(inv)]
    return {"groups": [{"name": f"labctl-{inv.lab.name}", "rules": rules}]}
