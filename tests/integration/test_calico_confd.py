"""The calico-resources layer's objects, read by Calico's own confd.

Until now the only reader of the IPPool, BGPConfiguration, BGPPeers, the Node
annotations and the ``labctl-bgp`` Secret that labctl applies was labctl itself:
its BIRD renderer writes what it believes confd would. Here the real consumer
reads them. A real kube-apiserver (on a real etcd, loopback) gets Calico's own
definitions from Calico's manifest with native ``projectcalico.org/v3`` CRDs
(``manifests/calico-v3-crds.yaml``, named in the inventory by URL and SHA-256 as
a real lab names it), the manifest's ``calico-node`` ServiceAccount and
ClusterRole, and then exactly what the layer's step applies
(``calico/resources.py``), with passwords on the mesh and on kek-core's peers.
``calico-node -confd``, built from Calico's source by ``scripts/build-calico.sh``,
then renders fohn's ``bird.cfg`` with the ServiceAccount's token, as calico-node
does in its pod, and its ``check_cmd`` has the real BIRD 1.6.8 parse it.

What it proves: Calico's CRD schemas accept every object labctl applies; the
Role labctl adds lets calico-node read the Secret (without it confd writes no
password); and the BGP sessions confd configures (names, neighbours, ASNs,
passive ends, passwords) are the ones labctl's own renderer writes for the
simulated lab. Then Calico's IPAM (``calico-ipam``) gives a pod on fohn an address
from labctl's IPPool: confd announces the block Calico chose, and labctl's real-lab
check reads that block as the one fohn must announce. Nothing here is simulated
but the kubelets (the Nodes and the pod are API objects only).
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labctl.calico import manifest as calico_manifest
from labctl.calico import resources, status
from labctl.drivers.kubernetes import KubeClient, KubeTls
from labctl.inventory import require_inventory, topology
from labctl.inventory.model import CalicoManifest, Inventory, SecretRef
from labctl.kubernetes.api import KubeSession
from labctl.kubernetes.binaries import bin_dir
from labctl.pki.builtin_backend import BuiltinBackend
from labctl.pki.store import PkiStore
from labctl.programs import BIRD1
from labctl.render import calico as render_calico
from labctl.render.bgp_common import resolving
from labctl.sim.render import bird
from tests.conftest import REFERENCE
from tests.peers.calico import (
    BirdPeer,
    bgp_protocols,
    ipam_add,
    require_build,
    run_confd_once,
    token_kubeconfig,
)
from tests.peers.etcd import ADDRS, EtcdCluster, mint_loopback_pki, running_etcd_cluster
from tests.peers.kubeapi import running_kube_apiserver
from tests.peers.tlsserver import TlsServer

pytestmark = pytest.mark.integration

VERSION = "v" + next(
    line.split()[1] for line in REFERENCE.read_text().splitlines() if "version: 1." in line
)
KEK_ENV, MESH_ENV = "LABCTL_TEST_CONFD_KEK_PASSWORD", "LABCTL_TEST_CONFD_MESH_PASSWORD"
PASSWORDS = {KEK_ENV: "kek-md5-Zq7v", MESH_ENV: "mesh-Hr4u"}
ASTRID_NODES = ("fohn", "chequita")


def lab_inventory(inventory: Inventory, manifest: Path) -> Inventory:
    """The reference inventory naming Calico's manifest (file URL and digest), with a
    password on the mesh and on the nodes' sessions to kek-core, and astrid peering
    with fohn and chequita only (a BGPPeer with a node selector, where kek-core's,
    for every node, has none)."""
    calico = inventory.cluster.calico
    peers = tuple(
        dataclasses.replace(p, password=SecretRef(env=KEK_ENV))
        if p.switch == "kek-core"
        else dataclasses.replace(p, nodes=ASTRID_NODES)
        for p in calico.peers
    )
    pinned = CalicoManifest(
        url=manifest.as_uri(), sha256=hashlib.sha256(manifest.read_bytes()).hexdigest()
    )
    calico = dataclasses.replace(
        calico, peers=peers, mesh_password=SecretRef(env=MESH_ENV), manifest=pinned
    )
    return dataclasses.replace(
        inventory, cluster=dataclasses.replace(inventory.cluster, calico=calico)
    )


@dataclass(frozen=True)
class Api:
    server: TlsServer
    admin: KubeClient
    ca: Path


@pytest.fixture(scope="module")
def passwords() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for k, v in PASSWORDS.items():
            mp.setenv(k, v)
        yield


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    pki: PkiStore = mint_loopback_pki(tmp_path_factory.mktemp("pki") / "ssl", BuiltinBackend())
    with running_etcd_cluster(tmp_path_factory.mktemp("etcd"), pki, size=1) as etcd:
        yield from _with_apiserver(pki, etcd, tmp_path_factory)


def _with_apiserver(
    pki: PkiStore, etcd: EtcdCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    log = tmp_path_factory.mktemp("kube-apiserver") / "kube-apiserver.log"
    binary = bin_dir(VERSION) / "kube-apiserver"
    with running_kube_apiserver(binary, ADDRS[0], pki, etcd, log) as server:
        tls = KubeTls(pki.path("ca.pem"), pki.path("admin.pem"), pki.path("admin-key.pem"))
        yield Api(server, KubeClient(server.url, tls, timeout=10), pki.path("ca.pem"))


@dataclass(frozen=True)
class Applied:
    inventory: Inventory
    kubeconfig: Path
    built: Path
    workdir: Path


@pytest.fixture(scope="module")
def applied(api: Api, passwords: None, tmp_path_factory: pytest.TempPathFactory) -> Applied:
    """The layer's step against the API, as on a real lab whose kubelets registered."""
    built = require_build()
    work = tmp_path_factory.mktemp("calico")
    inventory = lab_inventory(
        require_inventory(REFERENCE), built / "manifests" / "calico-v3-crds.yaml"
    )
    for server in topology.nodes(inventory):
        api.admin.json(
            "POST",
            "/api/v1/nodes",
            {
                "apiVersion": "v1",
                "kind": "Node",
                # The label every kubelet puts on its Node; node selectors use it.
                "metadata": {
                    "name": server.name,
                    "labels": {"kubernetes.io/hostname": server.name},
                },
            },
        )
    # calico-node's identity and cluster-wide rights come with Calico's manifest (its
    # workloads are applied on a real lab); only the Secret's Role is labctl's.
    assert inventory.cluster.calico.manifest is not None
    docs = calico_manifest.documents(
        calico_manifest.fetch(inventory.cluster.calico.manifest, work / "fetched"), "manifest"
    )
    session = KubeSession(inventory, work)
    session._client = api.admin
    want = resources.wanted(inventory, work, stand_in_node=True)
    resources.apply(session, want)
    identity = [
        d
        for d in docs
        if d["metadata"]["name"] == "calico-node"
        and d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
    ]
    assert len(identity) == 3, [d["kind"] for d in identity]
    session.apply(identity)
    token = api.admin.service_account_token("kube-system", "calico-node", seconds=3600)
    kubeconfig = token_kubeconfig(work / "kubeconfig", api.server.url, api.ca, token)
    return Applied(inventory, kubeconfig, built, work)


def sessions(
    peers: dict[str, BirdPeer],
) -> dict[str, tuple[str, int, int | None, bool, str | None]]:
    return {n: (p.neighbor, p.asn, p.local_as, p.passive, p.password) for n, p in peers.items()}


def test_confd_renders_the_sessions_labctl_renders_with_the_secrets_passwords(
    applied: Applied,
) -> None:
    mesh, kek, astrid = PASSWORDS[MESH_ENV], PASSWORDS[KEK_ENV], None
    # fohn is the lowest address: both of its mesh ends are passive; wind the highest.
    expected = {
        "fohn": {
            "Mesh_31_31_164_221": mesh,
            "Mesh_31_31_164_222": mesh,
            "Global_31_31_164_210": kek,
            "Node_31_31_164_211": astrid,
        },
        "wind": {
            "Mesh_31_31_164_220": mesh,
            "Mesh_31_31_164_221": mesh,
            "Global_31_31_164_210": kek,
        },
    }
    for name, sessions_wanted in expected.items():
        run = run_confd_once(applied.built, applied.workdir / name, applied.kubeconfig, name)
        assert run.returncode == 0, run.output[-4000:]
        # confd's check_cmd ran BIRD on it already; say so here too, with its includes.
        check = subprocess.run(
            [BIRD1, "-p", "-c", "bird.cfg"], cwd=run.config_dir, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr
        confd = bgp_protocols(run.file("bird.cfg"))
        server = next(s for s in topology.nodes(applied.inventory) if s.name == name)
        ours = bgp_protocols(
            bird.config(applied.inventory, server, resolving(lambda ref: PASSWORDS[ref.env or ""]))
        )
        assert {n: p.password for n, p in confd.items()} == sessions_wanted, name
        # Names, neighbours, ASNs, local AS, passive ends and passwords: labctl's renderer
        # writes the sessions the real confd writes.
        assert sessions(confd) == sessions(ours), name
        assert {n: p.password for n, p in ours.items()} == sessions_wanted, name


def test_without_labctls_role_confd_cannot_read_the_passwords(api: Api, applied: Applied) -> None:
    # The witness that the Role is what lets calico-node read the Secret: take the
    # binding away and confd reads no password (and says why), then put it back.
    role = next(
        d
        for d in render_calico.password_access(applied.inventory, {"x": "y"})
        if d["kind"] == "RoleBinding"
    )
    name, ns = role["metadata"]["name"], role["metadata"]["namespace"]
    session = KubeSession(applied.inventory, applied.workdir)
    admin = session._client = api.admin
    path = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/{name}"
    admin.json("DELETE", path)
    try:
        run = run_confd_once(applied.built, applied.workdir / "norole", applied.kubeconfig, "fohn")
        confd = bgp_protocols(run.file("bird.cfg")) if run.returncode == 0 else {}
        assert all(p.password in (None, "") for p in confd.values()), run.output[-3000:]
        assert "forbidden" in run.output.lower(), run.output[-3000:]
    finally:
        session.apply([role])


def test_calicos_ipam_picks_the_block_confd_announces_and_labctl_expects(
    api: Api, applied: Applied
) -> None:
    """Calico's IPAM, as the kubelet's CNI call runs it for a pod on fohn (with the
    cni-plugin identity Calico's manifest gives it), takes an address from labctl's
    IPPool, in a block of its own choosing; confd announces that block, and it is the
    block labctl's real-lab check (``calico.established``, ``bgp status``) expects.
    On main the check expected topology's block for fohn (10.188.0.0/26), which
    calico-node never announces: a real lab's bootstrap would wait for it and fail."""
    docs = calico_manifest.documents(
        (applied.built / "manifests" / "calico-v3-crds.yaml").read_bytes(), "manifest"
    )
    session = KubeSession(applied.inventory, applied.workdir)
    session._client = api.admin
    session.apply(
        [
            d
            for d in docs
            if d["metadata"]["name"] == "calico-cni-plugin"
            and d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
        ]
    )
    # The pod the kubelet would be starting (the API's ServiceAccount admission wants
    # the namespace's default account, which a controller manager would have made).
    session.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": "default"},
            },
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web-0", "namespace": "default"},
                "spec": {
                    "nodeName": "fohn",
                    "containers": [{"name": "web", "image": "example/web:1"}],
                },
            },
        ]
    )
    token = api.admin.service_account_token("kube-system", "calico-cni-plugin", seconds=3600)
    kubeconfig = token_kubeconfig(applied.workdir / "cni-kubeconfig", api.server.url, api.ca, token)
    result = ipam_add(
        applied.built, applied.workdir / "cni", kubeconfig, "fohn", "default", "web-0"
    )
    ips = result["ips"]
    assert isinstance(ips, list) and len(ips) == 1, result
    address = ipaddress.ip_interface(ips[0]["address"])
    assert address.ip in ipaddress.ip_network(applied.inventory.cluster.kubernetes.pod_cidr)
    block = str(
        ipaddress.ip_network(
            f"{address.ip}/{applied.inventory.cluster.calico.block_size}", strict=False
        )
    )
    run = run_confd_once(applied.built, applied.workdir / "ipam", applied.kubeconfig, "fohn")
    assert run.returncode == 0, run.output[-4000:]
    assert re.findall(r"route (\S+) blackhole;", run.file("bird_aggr.cfg")) == [
        block,
        "10.189.0.0/16",
        "31.31.164.212/30",
    ]
    # labctl reads the blocks where Calico keeps them: fohn's, and no other node has one.
    assert resources.pod_blocks(session) == {"fohn": [block]}
    # A switch that learned exactly what confd announces is complete by that reading.
    fohn = "31.31.164.220"
    learned = {"kek-core": {block: [fohn], "10.189.0.0/16": [fohn], "31.31.164.212/30": [fohn]}}
    fabric = status.assemble(
        applied.inventory, {}, learned, {}, {}, pod_blocks=resources.pod_blocks(session)
    )
    assert fabric.switches[0].missing == []
    # Calico seeds its choice with the node's name: not topology's block (the
    # stand-in's). Judged by topology, the same switch misses fohn's block forever,
    # which is what main's real-lab check did.
    assert block != topology.blocks(applied.inventory)["fohn"] == "10.188.0.0/26"
    by_topology = status.assemble(applied.inventory, {}, learned, {}, {})
    assert "fohn's block 10.188.0.0/26" in by_topology.switches[0].missing
