"""The calico-resources layer's objects, programmed by Calico's own Felix.

confd (tests/integration/test_calico_confd.py) is the reader of labctl's BGP
objects; Felix is the reader of the rest that matters to a node's data plane: the
IPPool's ``natOutgoing`` and CIDR, ClusterInformation, and the pods Calico's CNI
plugin wires. Nothing on the simulated lab runs Felix (docs/calico.md says why), so
here it runs as calico-node runs it (``calico-node -felix``, Kubernetes datastore,
the ``calico-node`` ServiceAccount's rights from Calico's manifest) in a network
namespace this test makes, against the same real kube-apiserver on a real etcd
holding exactly what the layer's step applies. Calico's CNI plugin gives a pod on
fohn an address and a veth; Felix is then asked from outside what it did:
``calico-node -felix-ready`` says it is ready, its NAT chain masquerades traffic
from the ipset holding labctl's IPPool CIDR (a datagram from the pod leaves with
the node's address, where before Felix it left with the pod's), the pod's veth
has its policy chains, forwarded traffic to the service prefixes labctl's
BGPConfiguration advertises is dropped (an address of the ingress range among them)
while a datagram to another node's address (wind's) is forwarded: the reference lab
once named its whole public /28, nodes and all, as serviceExternalIPs, and Felix
dropped that too (docs/calico.md, LAB150). The route to the pod, once removed, is
put back by Felix.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labctl.calico import manifest as calico_manifest
from labctl.inventory.model import Inventory
from labctl.kubernetes.api import KubeSession
from labctl.render import calico as render_calico
from labctl.sim.render.calico_confd import CLUSTER_INFORMATION
from tests.integration.test_calico_confd import (  # noqa: F401 (fixtures)
    Api,
    Applied,
    api,
    applied,
    passwords,
)
from tests.peers.calico import token_kubeconfig
from tests.peers.felix import (
    Namespaces,
    cni_add,
    forwarded,
    namespaces,
    running_felix,
    udp_probe,
    wait_ready,
)

pytestmark = pytest.mark.integration

NODE, POD = "fohn", "felix-0"
FOHN, WIND = "31.31.164.220", "31.31.164.222"  # the reference lab's node addresses
MASQ_SET = "cali40masq-ipam-pools"  # Felix's ipset of the pools with natOutgoing


def until(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.5)


def uplink(inventory: Inventory) -> dict[str, tuple[str, str]]:
    """fohn's uplink: its public address (wind's beyond it) and one on the management
    network, a network no Calico object names (a peer's beyond it)."""
    public = ipaddress.ip_network(inventory.network("public").cidr)
    mgmt = ipaddress.ip_network(inventory.network("mgmt").cidr)
    return {
        "public": (f"{FOHN}/{public.prefixlen}", f"{WIND}/{public.prefixlen}"),
        "mgmt": (f"{mgmt[20]}/{mgmt.prefixlen}", f"{mgmt[99]}/{mgmt.prefixlen}"),
    }


@pytest.fixture(scope="module")
def node_ns(api: Api, applied: Applied) -> Iterator[Namespaces]:  # noqa: F811
    with (
        namespaces(
            uplink(applied.inventory), str(applied.inventory.network("public").gateway)
        ) as ns,
        forwarded(ns.node, api.server.addr, api.server.port),
    ):
        yield ns


@pytest.fixture(scope="module")
def pod(api: Api, applied: Applied, node_ns: Namespaces) -> dict[str, str]:  # noqa: F811
    """A pod on fohn wired by Calico's CNI plugin: (address, host-side veth)."""
    docs = calico_manifest.documents(
        (applied.built / "manifests" / "calico-v3-crds.yaml").read_bytes(), "manifest"
    )
    session = KubeSession(applied.inventory, applied.workdir)
    session._client = api.admin
    session.apply(
        [
            # What calico-node's start-up writes (the simulated lab applies it too).
            CLUSTER_INFORMATION,
            *[
                d
                for d in docs
                if d["metadata"]["name"] == "calico-cni-plugin"
                and d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
            ],
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": "default"},
            },
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": POD, "namespace": "default"},
                "spec": {
                    "nodeName": NODE,
                    "containers": [{"name": "web", "image": "example/web:1"}],
                },
            },
        ]
    )
    token = api.admin.service_account_token("kube-system", "calico-cni-plugin", seconds=3600)
    kubeconfig = token_kubeconfig(
        applied.workdir / "felix-cni-kubeconfig", api.server.url, api.ca, token
    )
    result = cni_add(
        applied.built, node_ns, applied.workdir / "felix-cni", kubeconfig, NODE, "default", POD
    )
    ips, interfaces = result["ips"], result["interfaces"]
    assert isinstance(ips, list) and len(ips) == 1, result
    assert isinstance(interfaces, list), result
    veth = next(i["name"] for i in interfaces if i["name"].startswith("cali"))
    return {"address": str(ipaddress.ip_interface(ips[0]["address"]).ip), "veth": veth}


def host(address: str) -> str:
    return address.split("/")[0]


def test_felix_programs_nat_for_labctls_pool_and_the_pods_veth(
    applied: Applied,  # noqa: F811
    node_ns: Namespaces,
    pod: dict[str, str],
) -> None:
    inventory = applied.inventory
    pool = inventory.cluster.kubernetes.pod_cidr
    assert inventory.cluster.calico.nat_outgoing  # the reference lab's IPPool
    assert ipaddress.ip_address(pod["address"]) in ipaddress.ip_network(pool)
    links = uplink(inventory)
    mgmt_node, mgmt_peer = (host(a) for a in links["mgmt"])
    built: Path = applied.built

    # Before Felix: the node forwards the pod's traffic as it is (the CNI plugin's
    # veth and route only): the peer sees the pod's own address, and wind's address
    # on the public network is reached too.
    assert node_ns.run("sysctl", "-qw", "net.ipv4.ip_forward=1").returncode == 0
    assert udp_probe(node_ns, mgmt_peer) == pod["address"]
    assert udp_probe(node_ns, WIND) == pod["address"]
    # An address of the ingress range (serviceExternalIPs), held by the peer as a
    # router beyond the node would hold one: reached too.
    spec = render_calico.bgp_configuration(inventory)["spec"]
    external = [c["cidr"] for c in spec["serviceExternalIPs"]]
    ingress = str(next(ipaddress.ip_network(external[0]).hosts()))
    add = ["ip", "-n", node_ns.peer, "addr", "replace", f"{ingress}/32", "dev", "eth0"]
    assert subprocess.run(add, capture_output=True).returncode == 0
    assert udp_probe(node_ns, ingress) == pod["address"]

    with running_felix(built, node_ns, applied.workdir / "felix", applied.kubeconfig, NODE) as fx:
        wait_ready(built, node_ns, fx)

        # NAT leaving the pool: Felix's chain masquerades from the ipset of pools with
        # natOutgoing, and that ipset holds labctl's IPPool CIDR (and nothing else).
        nat = node_ns.run("iptables-save", "-t", "nat").stdout
        assert re.search(
            rf"^-A cali-nat-outgoing .*--match-set {MASQ_SET} src .*-j MASQUERADE", nat, re.M
        ), nat
        assert re.search(r"^-A cali-POSTROUTING .*-j cali-nat-outgoing", nat, re.M), nat
        members = node_ns.run("ipset", "list", MASQ_SET).stdout
        assert members.split("Members:\n", 1)[1].split() == [pool], members
        # ... and a datagram from the pod now leaves with the node's address.
        assert udp_probe(node_ns, mgmt_peer) == mgmt_node

        # The pod's endpoint (from the Pod the CNI plugin annotated): Felix dispatches
        # traffic to and from its veth to chains of its own.
        veth = pod["veth"]
        filt = node_ns.run("iptables-save", "-t", "filter").stdout
        assert re.search(rf"^-A cali-to-wl-dispatch -o {veth} .*-g cali-tw-{veth}$", filt, re.M)
        assert re.search(rf"^-A cali-from-wl-dispatch -i {veth} .*-g cali-fw-{veth}$", filt, re.M)

        # The service prefixes labctl's BGPConfiguration advertises (serviceClusterIPs,
        # serviceExternalIPs): Felix drops forwarded traffic to them that kube-proxy did
        # not translate ("blocking service CIDR loops"), and to nothing else.
        advertised = [
            c["cidr"]
            for key in ("serviceClusterIPs", "serviceExternalIPs")
            for c in spec.get(key, [])
        ]
        blocked = re.findall(r"^-A cali-cidr-block -d (\S+) .*-j DROP$", filt, re.M)
        assert sorted(blocked) == sorted(advertised), filt
        # The ingress range is among them: a datagram to an address in it, which
        # arrived before Felix, is dropped now (no Service claims it), and counted.
        assert udp_probe(node_ns, ingress, timeout=2) is None
        table = node_ns.run("iptables", "-t", "filter", "-L", "cali-cidr-block", "-nvx")
        dropped = next(line for line in table.stdout.splitlines() if external[0] in line)
        assert int(dropped.split()[0]) >= 1, table.stdout
        # The other nodes' addresses are in none of them (LAB150; the reference lab once
        # named its whole public /28, nodes and all, as serviceExternalIPs): a pod's
        # datagram to wind's address is forwarded, masqueraded to fohn's.
        assert udp_probe(node_ns, WIND) == FOHN, table.stdout

        # The route to the pod: the CNI plugin added it; taken away, Felix puts it back.
        def route() -> str:
            return node_ns.run("ip", "-4", "route", "show", f"{pod['address']}/32").stdout

        assert f"dev {veth}" in route(), route()
        node_ns.run("ip", "route", "del", f"{pod['address']}/32")
        assert route() == ""
        until(f"Felix restores the route to {pod['address']}", lambda: f"dev {veth}" in route())
