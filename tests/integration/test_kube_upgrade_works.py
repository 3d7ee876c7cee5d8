"""The upgrade's drain and uncordon works against a real kube-apiserver on loopback.

The API server of ``test_reset_drain.py`` (a one-member etcd, the lab's
authentication flags) is the peer. No kubelet runs here, so the test plays its
part: it reports the Node's kubelet version and Ready condition, and deletes for
good the pods the API marked for deletion. What is proven: a Node at the old
version is cordoned, marked and drained; once it reports the new version and
Ready it is uncordoned and unmarked; run again, both works do nothing (a resumed
upgrade); a Node the operator had cordoned stays cordoned.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.drivers.kubernetes import KubeClient
from labctl.engine.layer import LayerContext
from labctl.inventory import require_inventory
from labctl.kubernetes import upgrade
from tests.conftest import REFERENCE
from tests.integration.test_reset_drain import client, names_on, play_kubelet, pod

pytestmark = pytest.mark.integration
__all__ = ["client"]  # the module's API server, a fixture
NEW = "v" + require_inventory(REFERENCE).cluster.kubernetes.version
OLD = "v1.35.4"


def _report(client: KubeClient, node: str, version: str, ready: bool) -> None:
    status = {"status": {
        "nodeInfo": {"kubeletVersion": version},
        "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                        "reason": "KubeletReady" if ready else "KubeletNotReady",
                        "message": "played by the test"}],
    }}  # fmt: skip
    client.json("PATCH", f"/api/v1/nodes/{node}/status", status, "application/merge-patch+json")


def _works(client: KubeClient, node: str) -> tuple[Any, Any]:
    class Drain(upgrade.DrainWork):
        def _client(self, ctx: LayerContext) -> KubeClient:
            return client

    class Uncordon(upgrade.UncordonWork):
        def _client(self, ctx: LayerContext) -> KubeClient:
            return client

    return Drain(node), Uncordon(node)


@pytest.fixture
def kubelet(client: KubeClient) -> Iterator[None]:
    """The kubelets' part: pods marked for deletion are gone within half a second."""
    stop = threading.Event()

    def play() -> None:
        while not stop.wait(0.5):
            for node in ("chequita", "wind"):
                play_kubelet(client, node)

    thread = threading.Thread(target=play)
    thread.start()
    yield
    stop.set()
    thread.join()


def test_drain_then_uncordon_once_ready_at_the_new_version(
    client: KubeClient, kubelet: None, tmp_path: Path
) -> None:
    ctx = LayerContext(require_inventory(REFERENCE), REFERENCE, tmp_path)
    client.json("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                          "metadata": {"name": "chequita"}})  # fmt: skip
    _report(client, "chequita", OLD, True)
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    client.request("POST", "/api/v1/namespaces/default/serviceaccounts", account)
    client.json("POST", "/api/v1/namespaces/default/pods", pod("app", "chequita", {"a": "b"}))
    client.json("POST", "/api/v1/namespaces/default/pods",
                pod("agent", "chequita", {"a": "c"}, owner="DaemonSet"))  # fmt: skip
    drain, uncordon = _works(client, "chequita")

    assert drain.observe(ctx) == f"its kubelet runs {OLD}, not {NEW}: cordon and drain it first"
    assert drain.apply(ctx) is True
    node = client.json("GET", "/api/v1/nodes/chequita")
    assert node["spec"]["unschedulable"] is True
    assert node["metadata"]["annotations"][upgrade.ANNOTATION] == "cordoned/ready"
    assert names_on(client, "chequita") == {"agent"}  # the DaemonSet's pod stays

    # The kubelet restarted at the new version but is not Ready yet: still cordoned.
    _report(client, "chequita", NEW, False)
    said = uncordon.observe(ctx)
    assert said == f"once Ready at {NEW} (now {NEW}), chequita would be uncordoned"
    _report(client, "chequita", NEW, True)
    assert uncordon.apply(ctx) is True
    node = client.json("GET", "/api/v1/nodes/chequita")
    assert not node["spec"].get("unschedulable")
    assert upgrade.ANNOTATION not in (node["metadata"].get("annotations") or {})

    # Run again (a resumed upgrade, or a converged lab): neither does anything.
    assert drain.observe(ctx) is None and drain.apply(ctx) is False
    assert uncordon.observe(ctx) is None and uncordon.apply(ctx) is False
    assert upgrade.RunningNodes.from_api(client.list("/api/v1/nodes")).versions()["chequita"] == NEW


def test_a_node_the_operator_cordoned_stays_cordoned(
    client: KubeClient, kubelet: None, tmp_path: Path
) -> None:
    ctx = LayerContext(require_inventory(REFERENCE), REFERENCE, tmp_path)
    client.request("DELETE", "/api/v1/nodes/wind")
    client.json("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                          "metadata": {"name": "wind"},
                                          "spec": {"unschedulable": True}})  # fmt: skip
    _report(client, "wind", OLD, True)
    drain, uncordon = _works(client, "wind")
    assert drain.apply(ctx) is True
    node = client.json("GET", "/api/v1/nodes/wind")
    assert node["metadata"]["annotations"][upgrade.ANNOTATION] == "already/ready"
    _report(client, "wind", NEW, True)
    assert uncordon.apply(ctx) is True
    node = client.json("GET", "/api/v1/nodes/wind")
    assert node["spec"]["unschedulable"] is True
    assert upgrade.ANNOTATION not in (node["metadata"].get("annotations") or {})
