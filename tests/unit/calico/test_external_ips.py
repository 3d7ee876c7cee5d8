"""Calico's serviceExternalIPs (cluster.calico.advertise): LAB150 and the one list the
renders read.

Felix drops forwarded traffic to a serviceExternalIPs address no Service claims
(``cali-cidr-block``), so a range that holds a node, a switch, a gateway or anything
else the inventory gives an address cuts pods off from it
(tests/integration/test_calico_felix.py shows it on a real Felix). The reference lab
named its public /28 there; it now names a /30 of it that nothing holds.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from labctl.inventory import check_text, load_inventory, topology
from labctl.inventory.model import Inventory
from labctl.render import bgp_common, calico, switches
from labctl.sim.render import bird
from tests.conftest import REFERENCE

TEXT = REFERENCE.read_text()
INGRESS = "      external_cidrs: [31.31.164.212/30]"


def _edit(*pairs: tuple[str, str]) -> str:
    text = TEXT
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def _problems(text: str) -> list[tuple[str, int | None, str]]:
    result = check_text(text, "inventory.yaml", REFERENCE)
    return [
        (p.check_id, p.position.line if p.position else None, p.message) for p in result.problems
    ]


def _inventory(text: str) -> Inventory:
    result = check_text(text, "inventory.yaml", REFERENCE)
    assert result.inventory is not None and result.problems == [], result.problems
    return result.inventory


def _external_ips(inventory: Inventory) -> list[str]:
    spec = calico.bgp_configuration(inventory)["spec"]
    return [c["cidr"] for c in spec.get("serviceExternalIPs", [])]


def test_the_reference_lab_advertises_a_range_no_node_or_switch_is_in() -> None:
    result = load_inventory(REFERENCE)
    assert result.problems == []
    assert result.inventory is not None
    ranges = [ipaddress.ip_network(r) for r in _external_ips(result.inventory)]
    assert [str(r) for r in ranges] == ["31.31.164.212/30"]
    # The nodes, the API endpoint, the gateway, the switches, the boot service: outside.
    for address in ("31.31.164.209", "31.31.164.210", "31.31.164.211", "31.31.164.218"):
        assert not any(ipaddress.ip_address(address) in r for r in ranges)
    for server in result.inventory.servers:
        for nic in server.nics:
            for a in nic.addresses:
                assert not any(ipaddress.ip_address(a.address) in r for r in ranges), a


def test_the_public_network_with_the_nodes_on_it_is_refused_where_it_is_named() -> None:
    text = _edit((INGRESS, "      external_network: public"))
    line = next(
        n for n, t in enumerate(text.splitlines(), 1) if t.startswith("      external_network:")
    )
    found = _problems(text)
    assert [(i, n) for i, n, _ in found] == [("LAB150", line)], found
    message = found[0][2]
    for held in (
        "serviceExternalIPs range 31.31.164.208/28 holds",
        "31.31.164.209 (the gateway of public)",
        "31.31.164.210 (switch kek-core)",
        "31.31.164.218 (the boot service, lab.boot.address)",
        "31.31.164.220 (fohn eno1, the API endpoint api.sthlm.lab.example.net)",
        "31.31.164.222 (wind eno1)",
        "Felix (calico-node) drops traffic pods send to these ranges",
        "give ingress a range of its own in cluster.calico.advertise.external_cidrs",
    ):
        assert held in message, message


def test_the_cli_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(_edit((INGRESS, "      external_network: public")))
    problem = next(p for p in load_inventory(path).problems if p.check_id == "LAB150")
    assert problem.position is not None
    assert (problem.position.line, problem.position.column) == (281, 25)


@pytest.mark.parametrize(
    ("edits", "held"),
    [
        # A server's NIC on another network (storage), a BMC, a switch's management
        # address, a PDU, a DNS server, a switch's router id that is no interface.
        ((), "10.31.10.20 (fohn ens1f0)"),
        ((), "10.31.0.11 (fohn BMC)"),
        ((), "10.31.0.2 (switch kek-core)"),
        ((), "10.31.0.5 (PDU pdu1)"),
        ((), "9.9.9.9 (a DNS server of public)"),
        (
            (("router_id: 31.31.164.211", "router_id: 192.0.2.1"),),
            "192.0.2.1 (switch astrid's router id)",
        ),
    ],
)
def test_every_address_the_inventory_gives_is_refused_in_an_ingress_range(
    edits: tuple[tuple[str, str], ...], held: str
) -> None:
    address = held.split()[0]
    text = _edit(*edits, (INGRESS, f"      external_cidrs: [31.31.164.212/30, {address}/32]"))
    found = _problems(text)
    assert [i for i, _, _ in found] == ["LAB150"], found
    assert f"serviceExternalIPs range {address}/32 holds {held}: " in found[0][2], found


@pytest.mark.parametrize(
    ("cidr", "what"),
    [
        ("10.188.128.0/24", "pod CIDR 10.188.0.0/16 (cluster.kubernetes.pod_cidr)"),
        ("10.0.0.0/8", "pod CIDR 10.188.0.0/16"),
        ("10.189.0.0/24", "service CIDR 10.189.0.0/16 (cluster.kubernetes.service_cidr)"),
    ],
)
def test_an_ingress_range_overlapping_pods_or_services_is_refused(cidr: str, what: str) -> None:
    found = _problems(_edit((INGRESS, f"      external_cidrs: [{cidr}]")))
    assert found and {i for i, _, _ in found} == {"LAB150"}, found
    assert any(f"range {cidr} overlaps the {what}" in m for _, _, m in found), found


def test_a_network_for_ingress_alone_and_ranges_feed_one_list() -> None:
    # external_network stays right for a network that holds nothing but ingress.
    text = _edit(
        (
            "  - name: mgmt                      # invented\n",
            "  - name: ingress\n    cidr: 198.51.100.0/28\n    purpose: public\n"
            "  - name: mgmt                      # invented\n",
        ),
        (INGRESS, "      external_network: ingress\n" + INGRESS),
    )
    inventory = _inventory(text)
    both = ["198.51.100.0/28", "31.31.164.212/30"]
    assert _external_ips(inventory) == both
    assert [a.cidr for a in bgp_common.announced(inventory) if a.what == "ingress addresses"] == (
        both
    )
    kek = topology.switch(inventory, "kek-core")
    assert kek is not None
    frr = switches.config(inventory, kek, platform="frr")
    for cidr in both:
        assert f"permit {cidr} le 32" in frr
    fohn = bird.config(inventory, inventory.server("fohn"))
    for cidr in both:
        assert f"route {cidr} blackhole;  # ingress addresses" in fohn


def test_a_range_given_by_both_fields_is_advertised_once() -> None:
    inventory = _inventory(
        _edit(
            (
                "  - name: mgmt                      # invented\n",
                "  - name: ingress\n    cidr: 198.51.100.0/28\n    purpose: public\n"
                "  - name: mgmt                      # invented\n",
            ),
            (INGRESS, "      external_network: ingress\n      external_cidrs: [198.51.100.0/28]"),
        )
    )
    assert _external_ips(inventory) == ["198.51.100.0/28"]
