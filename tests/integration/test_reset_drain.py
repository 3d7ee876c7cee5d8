"""A reset's drain and Node deletion against a real kube-apiserver on loopback.

The API server (on a one-member etcd, the lab's authentication flags) is the peer
that decides evictions: a PodDisruptionBudget it cannot yet allow a disruption under
answers 429, and the drain must end, after its bound, naming the pod it blocks. No
kubelet runs here, so the test plays the kubelet's part: it deletes for good the
pods the API marked for deletion. DaemonSets' pods are left on the node, as a drain
leaves them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.day2.apply import Reset
from labctl.day2.retire import Step
from labctl.drivers.kubernetes import KubeClient, KubeTls
from labctl.errors import DriverTimeout
from labctl.inventory import require_inventory
from labctl.kubernetes.binaries import bin_dir
from labctl.pki.builtin_backend import BuiltinBackend
from labctl.pki.store import PkiStore
from tests.conftest import REFERENCE
from tests.peers.etcd import ADDRS, EtcdCluster, mint_loopback_pki, running_etcd_cluster
from tests.peers.kubeapi import running_kube_apiserver

pytestmark = pytest.mark.integration
VERSION = "v" + next(
    line.split()[1] for line in REFERENCE.read_text().splitlines() if "version: 1." in line
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeClient]:
    pki: PkiStore = mint_loopback_pki(tmp_path_factory.mktemp("pki") / "ssl", BuiltinBackend())
    etcd: EtcdCluster
    with running_etcd_cluster(tmp_path_factory.mktemp("etcd"), pki, size=1) as etcd:
        log = tmp_path_factory.mktemp("kube-apiserver") / "kube-apiserver.log"
        binary = bin_dir(VERSION) / "kube-apiserver"
        with running_kube_apiserver(binary, ADDRS[0], pki, etcd, log) as server:
            tls = KubeTls(pki.path("ca.pem"), pki.path("admin.pem"), pki.path("admin-key.pem"))
            yield KubeClient(server.url, tls, timeout=5)


def pod(
    name: str, node: str, labels: dict[str, str], owner: str | None = None
) -> dict[str, object]:
    meta: dict[str, object] = {"name": name, "namespace": "default", "labels": labels}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner, "name": "ds",
                                    "uid": "00000000-0000-0000-0000-000000000001"}]  # fmt: skip
    spec = {"nodeName": node, "automountServiceAccountToken": False,
            "containers": [{"name": "c", "image": "pause"}]}  # fmt: skip
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def names_on(client: KubeClient, node: str) -> set[str]:
    pods = client.list(f"/api/v1/pods?fieldSelector=spec.nodeName%3D{node}")
    return {p["metadata"]["name"] for p in pods if "deletionTimestamp" not in p["metadata"]}


def play_kubelet(client: KubeClient, node: str) -> None:
    """Delete for good the pods the API marked for deletion (a kubelet confirms them)."""
    for p in client.list(f"/api/v1/pods?fieldSelector=spec.nodeName%3D{node}"):
        if "deletionTimestamp" in p["metadata"]:
            client.request(
                "DELETE", f"/api/v1/namespaces/default/pods/{p['metadata']['name']}",
                {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0},
            )  # fmt: skip


def test_drain_evicts_waits_on_a_disruption_budget_then_the_node_is_deleted(
    client: KubeClient, tmp_path: Path
) -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "wind"}}
    client.json("POST", "/api/v1/nodes", node)
    # No controller manager here makes the namespace's default service account.
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    client.json("POST", "/api/v1/namespaces/default/serviceaccounts", account)
    for doc in (
        pod("web", "wind", {"app": "web"}),
        pod("guarded", "wind", {"app": "guarded"}),
        pod("agent", "wind", {"app": "agent"}, owner="DaemonSet"),
        pod("elsewhere", "fohn", {"app": "web"}),
    ):
        client.json("POST", "/api/v1/namespaces/default/pods", doc)
    budget = {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "guarded", "namespace": "default"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}},
    }  # fmt: skip
    client.json("POST", "/apis/policy/v1/namespaces/default/poddisruptionbudgets", budget)
    # A budget guards running, ready pods (a pending one is evicted whatever it says).
    ready = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    for name in ("web", "guarded", "agent"):
        client.json("PATCH", f"/api/v1/namespaces/default/pods/{name}/status", ready,
                    "application/merge-patch+json")  # fmt: skip

    reset = Reset(require_inventory(REFERENCE), tmp_path, tmp_path, drain_wait=3.0)
    reset.kube = client
    with pytest.raises(DriverTimeout) as refused:
        reset.do(Step("wind", "cordon", "wind", "cordon Node wind"))
    assert str(refused.value) == (
        "draining wind: after 3 s, a PodDisruptionBudget blocks default/guarded (The "
        "disruption budget guarded is still being processed by the server.); still "
        "stopping: default/web"
    )
    assert client.json("GET", "/api/v1/nodes/wind")["spec"]["unschedulable"] is True
    assert names_on(client, "wind") == {"guarded", "agent"}  # web was evicted
    assert names_on(client, "fohn") == {"elsewhere"}

    # The budget gone, the drain finishes; the DaemonSet's pod stays.
    client.request("DELETE", "/apis/policy/v1/namespaces/default/poddisruptionbudgets/guarded")
    reset.drain_wait = 30.0
    reset.say = lambda line: play_kubelet(client, "wind")
    reset.do(Step("wind", "cordon", "wind", "cordon Node wind"))
    assert names_on(client, "wind") == {"agent"}

    reset.do(Step("wind", "delete-node", "wind", "delete Node wind"))
    assert client.get("/api/v1/nodes/wind") is None
    reset.do(Step("wind", "delete-node", "wind", "delete Node wind"))  # gone already: fine
