"""The calico-resources layer end to end: Calico's objects on the real API server, Nodes Ready.

On the simulated reference lab with the real Kubernetes binaries: after etcd,
kubernetes and calico (FRR on the switches, BIRD 1.6 and the stand-in CNI
configuration on the nodes), ``calico-resources`` applies the stand-in
definitions, the IPPool, BGPConfiguration, BGPPeers and each Node's BGP
annotations, and every Node turns Ready (containerd found a pod network). The
real kubectl reads it all back. CoreDNS runs on that pod network and answers
`dig` for the `kubernetes` Service from every node. calico-node's Felix runs on every
node (by default; ``LABCTL_CALICO_FELIX=1`` here) and is asked what it did: its
``cali-*`` chains and the IPPool's NAT on every node, each CoreDNS pod's veth and route
in its view, and a datagram from a CoreDNS pod's own network namespace to another node
leaving with its node's address (Felix's masquerade; without Felix it leaves with the
pod's). Then a manifest named by URL and SHA-256: a
wrong digest is refused with nothing applied; the right one is fetched into the
cache and its definitions applied (only those, while BIRD stands in for
calico-node); without the stand-in its other objects are applied too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from ipaddress import ip_address, ip_network
from typing import Any

import pytest
import yaml

from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.programs import calico_build_dir
from labctl.render import calico as calico_render
from labctl.render.kubernetes import common as kube_common
from labctl.sim.render import calico_standin
from tests.conftest import REFERENCE
from tests.e2e.conftest import NODES, Lab
from tests.e2e.test_kubernetes_lab import (
    SERVICE_IP,
    bootstrap,
    diagnose,
    kubectl,
    labctl,
    outcomes,
)
from tests.labctl_process import run_labctl

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def calico_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """This lab runs calico-node's confd and CNI plugin (`labctl sim env` passes the build
    on by default; named here so that an operator's LABCTL_CALICO_NODE=0 cannot turn this
    test into one of labctl's own bird.cfg; scripts/setup.sh builds it)."""
    built = calico_build_dir(os.environ, os.getuid())
    assert (built / "bin" / "calico-node").exists(), f"no calico-node in {built}: run setup"
    monkeypatch.setenv("LABCTL_CALICO_NODE", str(built))
    # ... with its Felix (the default too; named so that LABCTL_CALICO_FELIX=0 cannot
    # turn it off here: docs/calico.md, "Felix on the simulated nodes").
    monkeypatch.setenv("LABCTL_CALICO_FELIX", "1")


def _items(lab: Lab, *what: str) -> list[dict[str, Any]]:
    got = kubectl(lab, "get", *what, "-o", "json")
    assert got.returncode == 0, got.stderr
    items: list[dict[str, Any]] = json.loads(got.stdout)["items"]
    return items


def _manifest(lab: Lab) -> bytes:
    """A manifest of the test's own: the stand-in kinds, one more definition (so its
    use shows), and a ConfigMap standing for the workloads a real manifest has."""
    extra = calico_standin.definition("LabctlMarker", "labctlmarkers")
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "calico-config", "namespace": "kube-system"},
        "data": {"calico_backend": "bird"},
    }
    docs = [*calico_standin.definitions(), extra, config]
    return yaml.safe_dump_all(docs, sort_keys=False).encode()


def _name_manifest(lab: Lab, url: str, sha256: str) -> None:
    path = lab.workdir / "inventory.yaml"
    text = path.read_text()
    marker = "  calico:\n"
    assert marker in text
    text = text.replace(marker, f"{marker}    manifest: {{url: '{url}', sha256: '{sha256}'}}\n", 1)
    path.write_text(text)


def _changing(report: dict[str, Any]) -> list[object]:
    """The steps of a run's report that changed or would change, with their reasons."""
    return [
        (s["step_id"], s["outcome"], s.get("reason"))
        for layer in report["layers"]
        for plan in layer["plans"]
        for s in plan["steps"]
        if s["outcome"] not in ("unchanged", "skipped")
    ]


def _pod_network_said(lab: Lab) -> str:
    """What Calico's CNI plugin, confd and the kubelets said of the pod network."""
    said = []
    for name, address in NODES.items():
        log = lab.ssh(
            address,
            "tail -n 12 /var/log/calico/cni/cni.log; "
            "tail -n 8 /var/log/labctl-units/calico-confd.service.log; "
            "grep -i 'sandbox' /var/log/labctl-units/kubelet.service.log | tail -n 4",
        )
        said.append(f"--- {name}\n{log.stdout}{log.stderr}")
    return "\n".join(said)[-9000:]


def _cluster_dns_answers_on_every_node(lab: Lab, inventory: Inventory) -> None:
    """CoreDNS's pods (the image labctl built from CoreDNS's module) Running and ready on
    the pod network, and its Service answering from every node: from a node that runs
    none of them, kube-proxy's rules send the query to a pod on another node, over the
    routes BIRD learned; CoreDNS answers from what it read from the API server through
    the ``kubernetes`` Service."""
    from_ = time.monotonic()
    end = from_ + 180
    while True:
        pods = _items(lab, "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")
        ready = {
            str(p["metadata"]["name"]): (p["spec"].get("nodeName"), p["status"].get("podIP"))
            for p in pods
            if p["status"].get("phase") == "Running"
            and all(s.get("ready") for s in p["status"].get("containerStatuses", [{}]))
        }
        if len(ready) == 2:
            break
        assert time.monotonic() < end, f"{json.dumps(pods)[-2000:]}\n{_pod_network_said(lab)}"
        time.sleep(1)
    hosts = {node for node, _ in ready.values()}
    assert all(ip.startswith("10.188.") for _, ip in ready.values()), ready  # the pod network
    assert set(NODES) - hosts, "some node runs no CoreDNS pod"  # 2 replicas, 3 nodes
    service = kube_common.cluster_dns(inventory)
    domain = inventory.cluster.kubernetes.cluster_domain
    ask = f"dig +short +time=2 +tries=1 @{service} kubernetes.default.svc.{domain} A"
    for name, address in NODES.items():
        end = time.monotonic() + 30
        while (answer := lab.ssh(address, ask)).stdout.strip() != SERVICE_IP:
            assert time.monotonic() < end, f"{name}: {answer.stdout}{answer.stderr}"
            time.sleep(1)
    status = labctl(lab, "kubernetes", "status", "-o", "json")
    assert status.returncode == 0, status.stdout + status.stderr
    addons = {a["name"]: a["healthy"] for a in json.loads(status.stdout)["addons"]}
    assert addons == {"kube-proxy": True, "coredns": True}, status.stdout
    print(f"CoreDNS ready and answering on every node: {time.monotonic() - from_:.1f} s"
          f" after every Node was Ready (its pods on {', '.join(sorted(hosts))})")  # fmt: skip


MESH_KEY = "mesh-e2e-confd-4Rw"  # the mesh's BGP password, in a file the inventory names
CONFD_BIRD = "/etc/calico/confd/config/bird.cfg"
CONFD_AGGR = "/etc/calico/confd/config/bird_aggr.cfg"
INGRESS = [
    c["cidr"]
    for c in calico_render.bgp_configuration(require_inventory(REFERENCE))["spec"].get(
        "serviceExternalIPs", []
    )
]


def _mesh_password(lab: Lab) -> None:
    """A password on the node-to-node mesh: only the ``labctl-bgp`` Secret carries it to
    calico-node's confd, which must write it into both ends of every mesh session."""
    (lab.workdir / "bgp-mesh.key").write_text(MESH_KEY + "\n")
    path = lab.workdir / "inventory.yaml"
    marker = "  calico:\n"
    text = path.read_text()
    assert marker in text and "mesh_password" not in text
    path.write_text(text.replace(marker, f"{marker}    mesh_password: {{file: bgp-mesh.key}}\n", 1))


def _nodes_run_confds_bird_cfg(lab: Lab) -> None:
    """Every node's BIRD runs the bird.cfg calico-node's confd wrote from Calico's objects
    (its own marker, the mesh password from the Secret), every mesh session Established,
    and each node announces the blocks Calico's IPAM gave it (none is topology's)."""
    for name, address in NODES.items():
        cfg = lab.ssh(address, f"cat {CONFD_BIRD}")
        assert cfg.returncode == 0, f"{name}: {cfg.stderr}\n{diagnose(lab)}"
        assert "# Generated by confd" in cfg.stdout.splitlines(), f"{name}: {cfg.stdout[:2000]}"
        meshes = re.findall(r"^protocol bgp (Mesh_\S+) ", cfg.stdout, re.M)
        assert len(meshes) == len(NODES) - 1, f"{name}: {cfg.stdout}"
        assert cfg.stdout.count(f'password "{MESH_KEY}";') == len(meshes), cfg.stdout
        # confd's aggregate: a static route for each service range, the ingress range
        # among them, and none holds a node's address (LAB150: Felix would drop it).
        aggr = lab.ssh(address, f"cat {CONFD_AGGR}").stdout
        statics = re.findall(r"^\s*route (\S+) blackhole;", aggr, re.M)
        assert INGRESS and set(INGRESS) <= set(statics), f"{name}: {aggr}"
        held = [(n, r) for n in NODES.values() for r in statics if ip_address(n) in ip_network(r)]
        assert held == [], f"{name}: {aggr}"
        unit = lab.ssh(address, "systemctl is-active calico-confd")
        assert unit.stdout.strip() == "active", f"{name}: {unit.stdout}{unit.stderr}"
    status = labctl(lab, "bgp", "status", "-o", "json")
    assert status.returncode == 0, status.stdout[-3000:] + status.stderr[-3000:]
    fabric = json.loads(status.stdout)
    assert all(s["established"] for s in fabric["sessions"]), fabric["sessions"]
    assert len(fabric["sessions"]) == 12, fabric["sessions"]  # 6 mesh, 3 nodes x 2 switches
    learned = set().union(*(set(sw["learned"]) for sw in fabric["switches"]))
    claimed = {b for blocks in _claimed_blocks(lab).values() for b in blocks}
    assert claimed and claimed <= learned, (claimed, learned)


MASQ_SET = "cali40masq-ipam-pools"  # Felix's ipset of the pools with natOutgoing
PROBE_PORT = 7777


def _felix_programmed_every_node(lab: Lab, inventory: Inventory) -> None:
    """calico-node's Felix ready on every node (the pod's readiness probe), its chains
    and the IPPool's NAT there; each CoreDNS pod's route (the CNI plugin's) and veth
    in Felix's view (chains of the endpoint's own); and what only Felix does: a
    datagram from a CoreDNS pod to another node leaves masqueraded to its node's
    address (without Felix it keeps the pod's)."""
    built = calico_build_dir(os.environ, os.getuid())
    pool = inventory.cluster.kubernetes.pod_cidr
    for name, address in NODES.items():
        ready = lab.ssh(address, f"{built}/bin/calico-node -felix-ready", timeout=30)
        assert ready.returncode == 0, f"{name}: {ready.stdout}{ready.stderr}\n{_felix_said(lab)}"
        nat = lab.ssh(address, "iptables-save -t nat").stdout
        assert re.search(
            rf"^-A cali-nat-outgoing .*--match-set {MASQ_SET} src .*-j MASQUERADE", nat, re.M
        ), f"{name}: {nat}"
        assert re.search(r"^-A POSTROUTING .*-j cali-POSTROUTING", nat, re.M), f"{name}: {nat}"
        members = lab.ssh(address, f"ipset list {MASQ_SET}").stdout
        assert members.split("Members:\n", 1)[-1].split() == [pool], f"{name}: {members}"
        filt = lab.ssh(address, "iptables-save -t filter").stdout
        assert re.search(r"^-A FORWARD .*-j cali-FORWARD", filt, re.M), f"{name}: {filt}"
    pods = _items(lab, "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")
    placed = [(p["spec"]["nodeName"], p["status"]["podIP"]) for p in pods]
    assert placed, pods
    for node, pod_ip in placed:
        address = NODES[str(node)]
        route = lab.ssh(address, f"ip -4 route show {pod_ip}/32").stdout
        veth = re.search(r"\bdev (cali\w+)", route)
        assert veth, f"{node}: no route to {pod_ip} on a veth: {route!r}"
        filt = lab.ssh(address, "iptables-save -t filter").stdout
        for chain in (f"cali-tw-{veth[1]}", f"cali-fw-{veth[1]}"):
            assert f":{chain} " in filt, f"{node}: no {chain}\n{filt}"
    node, pod_ip = placed[0]
    other = next(n for n in NODES if n != node)
    source = _datagram_source(lab, str(node), str(pod_ip), other)
    assert source == NODES[str(node)], (
        f"a datagram from {pod_ip} on {node} to {other} arrived from {source}, not from "
        f"{node}'s address (Felix's masquerade)\n{_felix_said(lab)}"
    )


POLICY = "labctl-e2e-deny-one-coredns"
POLICY_WAIT = 45.0  # seconds for Felix to program (or remove) the policy's rules


def _felix_enforces_a_network_policy(lab: Lab, inventory: Inventory) -> None:
    """A Kubernetes NetworkPolicy that denies all ingress to one CoreDNS pod (picked by a
    label put on it alone) is enforced by Felix: a DNS query to that pod, from a node
    that runs no CoreDNS pod (so it is forwarded through the pod's node, where Felix's
    to-workload chain applies), is dropped, while the other CoreDNS pod answers the
    same query; with the policy deleted the first answers again. Without Felix nothing
    enforces the policy, and the first wait fails."""
    started = time.monotonic()
    pods = _items(lab, "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")
    placed = sorted(
        (str(p["metadata"]["name"]), str(p["spec"]["nodeName"]), str(p["status"]["podIP"]))
        for p in pods
    )
    assert len(placed) == 2, placed
    (denied, _, denied_ip), (_, _, open_ip) = placed
    source = NODES[next(n for n in NODES if n not in {node for _, node, _ in placed})]
    domain = inventory.cluster.kubernetes.cluster_domain

    def answers(pod_ip: str) -> bool:
        ask = f"dig +short +time=1 +tries=1 @{pod_ip} kubernetes.default.svc.{domain} A"
        return lab.ssh(source, ask).stdout.strip() == SERVICE_IP

    def wait(pod_ip: str, answering: bool, why: str) -> None:
        end = time.monotonic() + POLICY_WAIT
        while answers(pod_ip) != answering:
            assert time.monotonic() < end, f"{why}\n{_felix_said(lab)}"
        assert answers(open_ip), f"the CoreDNS pod {open_ip} without the policy is silent"

    wait(denied_ip, True, f"{denied} ({denied_ip}) does not answer before any policy")
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": POLICY, "namespace": "kube-system"},
        "spec": {"podSelector": {"matchLabels": {POLICY: "yes"}}, "policyTypes": ["Ingress"]},
    }
    path = lab.workdir / f"{POLICY}.json"
    path.write_text(json.dumps(policy))
    labelled = kubectl(lab, "label", "pod", "-n", "kube-system", denied, f"{POLICY}=yes")
    assert labelled.returncode == 0, labelled.stderr
    try:
        applied = kubectl(lab, "apply", "-f", str(path))
        assert applied.returncode == 0, applied.stderr
        wait(denied_ip, False, f"{denied} ({denied_ip}) still answers under {POLICY}: "
             f"Felix did not enforce it within {POLICY_WAIT:.0f} s")  # fmt: skip
        dropped = time.monotonic()
    finally:
        deleted = kubectl(lab, "delete", "-f", str(path), "--ignore-not-found")
        assert deleted.returncode == 0, deleted.stderr
        unlabelled = kubectl(lab, "label", "pod", "-n", "kube-system", denied, f"{POLICY}-")
        assert unlabelled.returncode == 0, unlabelled.stderr
    wait(denied_ip, True, f"{denied} ({denied_ip}) silent with {POLICY} deleted")
    print(f"NetworkPolicy enforced by Felix: {denied} dropped {dropped - started:.1f} s, "
          f"answering again {time.monotonic() - dropped:.1f} s later")  # fmt: skip


def _datagram_source(lab: Lab, node: str, pod_ip: str, to: str) -> str | None:
    """The address ``to`` sees a UDP datagram from the pod ``pod_ip`` on ``node`` come
    from: sent inside the pod's own network namespace (found by its address) to a
    listener on ``to``'s address, which answers with the source it saw."""
    echo = (
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        f"s.bind(('{NODES[to]}', {PROBE_PORT})); s.settimeout(40); "
        "_, peer = s.recvfrom(64); s.sendto(peer[0].encode(), peer)"
    )
    ask = (
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        "s.settimeout(0.5)\n"
        "for _ in range(60):\n"
        f"    s.sendto(b'felix?', ('{NODES[to]}', {PROBE_PORT}))\n"
        "    try: print(s.recv(64).decode()); break\n"
        "    except TimeoutError: pass"
    )
    find = (
        "for ns in $(ip netns list | cut -d' ' -f1); do "
        f'ip -n "$ns" -o -4 addr show | grep -q \' {pod_ip}/\' && echo "$ns"; done'
    )
    netns = lab.ssh(NODES[node], find).stdout.split()
    assert len(netns) == 1, f"{node}: the network namespace of {pod_ip}: {netns}"
    with ThreadPoolExecutor(1) as pool:
        heard = pool.submit(lab.ssh, NODES[to], f"python3 -c {shlex.quote(echo)}", 45)
        said = lab.ssh(
            NODES[node], f"ip netns exec {netns[0]} python3 -c {shlex.quote(ask)}", timeout=45
        )
        listener = heard.result()
    assert said.returncode == 0 and listener.returncode == 0, (said, listener)
    return said.stdout.strip() or None


def _felix_said(lab: Lab) -> str:
    said = []
    for name, address in NODES.items():
        log = lab.ssh(address, "tail -n 15 /var/log/labctl-units/calico-felix.service.log")
        said.append(f"--- {name}\n{log.stdout}{log.stderr}")
    return "\n".join(said)[-9000:]


def _claimed_blocks(lab: Lab) -> dict[str, list[str]]:
    affinities = _items(lab, "blockaffinities.projectcalico.org")
    out: dict[str, list[str]] = {}
    for a in affinities:
        spec = a["spec"]
        if spec.get("state") == "confirmed":
            out.setdefault(spec["node"], []).append(spec["cidr"])
    return out


def test_calico_resources_on_the_api_and_every_node_ready(lab: Lab) -> None:
    _mesh_password(lab)
    bootstrap(lab, "--only", "power", "--only", "pki")
    start = time.monotonic()
    bootstrap(
        lab, "--only", "etcd", "--only", "kubernetes", "--only", "calico",
        "--only", "calico-resources",
    )  # fmt: skip
    print(f"etcd, kubernetes, calico, calico-resources to every Node Ready: "
          f"{time.monotonic() - start:.1f} s")  # fmt: skip
    written = labctl(lab, "kubeconfig", "--write", str(lab.workdir / "admin.conf"))
    assert written.returncode == 0, written.stderr

    # Every Node Ready: the kubelets' runtime found the stand-in pod network.
    nodes = {n["metadata"]["name"]: n for n in _items(lab, "nodes")}
    for name, node in nodes.items():
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", f"{name}: {ready}\n{diagnose(lab)}"

    inventory = require_inventory(REFERENCE)
    _cluster_dns_answers_on_every_node(lab, inventory)
    _nodes_run_confds_bird_cfg(lab)
    _felix_programmed_every_node(lab, inventory)
    _felix_enforces_a_network_policy(lab, inventory)
    assert MESH_KEY not in (lab.workdir / ".labctl" / "journal.jsonl").read_text()

    pools = _items(lab, "ippools.projectcalico.org")
    # What labctl set, as it set it (Calico's definitions default the fields it leaves out,
    # as assignmentMode).
    want_pool = calico_render.ip_pool(inventory)["spec"]
    assert [{k: p["spec"].get(k) for k in want_pool} for p in pools] == [want_pool]
    config = _items(lab, "bgpconfigurations.projectcalico.org")
    assert [c["metadata"]["name"] for c in config] == ["default"]
    assert config[0]["spec"]["asNumber"] == inventory.cluster.calico.asn
    peers = _items(lab, "bgppeers.projectcalico.org")
    want_peers = calico_render.bgp_peers(inventory)
    assert sorted(p["metadata"]["name"] for p in peers) == sorted(
        p["metadata"]["name"] for p in want_peers
    )
    for want in calico_render.kubernetes_nodes(inventory):
        have = nodes[want["metadata"]["name"]]["metadata"]["annotations"]
        for key, value in want["metadata"]["annotations"].items():
            assert have.get(key) == value, (key, have)

    # Converged: a dry run and a re-run change nothing.
    dry = bootstrap(lab, "--only", "calico-resources", "--dry-run")
    assert outcomes(dry) <= {"unchanged", "skipped"}, _changing(dry)
    again = bootstrap(lab, "--only", "calico-resources")
    assert outcomes(again) <= {"unchanged", "skipped"}, json.dumps(again)[-3000:]

    # A manifest by URL and digest: the wrong digest is refused, nothing applied.
    data = _manifest(lab)
    source = lab.workdir / "calico-mirror" / "calico.yaml"
    source.parent.mkdir()
    source.write_bytes(data)
    _name_manifest(lab, source.as_uri(), "0" * 64)
    refused = labctl(lab, "bootstrap", "--only", "calico-resources")
    assert refused.returncode != 0
    assert "SHA-256" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    crds = {c["metadata"]["name"] for c in _items(lab, "crd")}
    assert "labctlmarkers.projectcalico.org" not in crds

    # The right digest: fetched into the cache, only its definitions applied while
    # BIRD stands in for calico-node.
    digest = hashlib.sha256(data).hexdigest()
    (lab.workdir / "inventory.yaml").write_text(
        (lab.workdir / "inventory.yaml").read_text().replace("0" * 64, digest)
    )
    bootstrap(lab, "--only", "calico-resources")
    assert (lab.workdir / ".labctl" / "cache" / "calico" / f"{digest}.yaml").read_bytes() == data
    crds = {c["metadata"]["name"] for c in _items(lab, "crd")}
    assert "labctlmarkers.projectcalico.org" in crds
    absent = kubectl(lab, "get", "configmap", "-n", "kube-system", "calico-config")
    assert absent.returncode != 0

    # Without the stand-in (a real lab), the manifest's other objects go too; the
    # cached copy serves though the mirror is gone.
    source.unlink()
    env = {k: v for k, v in lab.env().items() if k != "LABCTL_CALICO_BIRD"}
    # A real lab without the manifest is refused before anything runs (LAB120).
    text = (lab.workdir / "inventory.yaml").read_text()
    unnamed = "\n".join(x for x in text.splitlines() if "    manifest: {url:" not in x) + "\n"
    (lab.workdir / "inventory.yaml").write_text(unnamed)
    refused = run_labctl("bootstrap", "--only", "calico-resources", cwd=lab.workdir, env=env)
    assert refused.returncode == 1 and "error LAB120 cluster.calico" in refused.stderr
    (lab.workdir / "inventory.yaml").write_text(text)
    real = run_labctl(
        "bootstrap", "--only", "calico-resources", "-o", "json", cwd=lab.workdir, env=env,
        timeout=300,
    )  # fmt: skip
    assert real.returncode == 0, real.stdout[-3000:] + real.stderr[-3000:]
    # ... and the real lab's last wait: every session with a switch Established, as the
    # switches say (kek-core's FRR over SSH, astrid's snmpd over BGP4-MIB).
    ran = {
        s["step_id"]: s["outcome"]
        for layer in json.loads(real.stdout)["layers"]
        for plan in layer["plans"]
        for s in plan["steps"]
    }
    assert ran.get("local:calico.established") == "unchanged", ran  # it ran, and passed
    present = kubectl(lab, "get", "configmap", "-n", "kube-system", "calico-config")
    assert present.returncode == 0, present.stderr
