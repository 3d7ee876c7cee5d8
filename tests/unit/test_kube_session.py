"""The Kubernetes driver's and session's pure parts: API paths, what "differs" means,
how a Node's and an addon's state are read. The real API is in tests/e2e/test_kubernetes_lab.py."""

from __future__ import annotations

import pytest

from labctl.drivers.kubernetes import object_path
from labctl.errors import DriverError
from labctl.kubernetes.api import addon_state, is_subset, node_state


def test_object_paths_follow_the_api_groups_and_namespaces() -> None:
    assert (
        object_path({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "coredns", "namespace": "kube-system"}})
        == "/api/v1/namespaces/kube-system/configmaps/coredns"
    )  # fmt: skip
    assert (
        object_path({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                     "metadata": {"name": "system:coredns"}})
        == "/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Acoredns"
    )  # fmt: skip
    with pytest.raises(DriverError, match="does not know where the API keeps a Widget"):
        object_path({"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w"}})


def test_what_the_server_adds_is_not_a_difference() -> None:
    want = {"spec": {"replicas": 2, "ports": [{"port": 53}]}}
    have = {"spec": {"replicas": 2, "ports": [{"port": 53, "protocol": "UDP"}], "paused": False}}
    assert is_subset(want, have)
    assert not is_subset({"spec": {"replicas": 3}}, have)
    assert not is_subset({"spec": {"ports": [{"port": 53}, {"port": 54}]}}, have)
    assert not is_subset({"data": {"Corefile": "x"}}, have)


def test_node_state_reads_readiness_and_why_not() -> None:
    node = {
        "metadata": {"name": "wind"},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "False", "message": "NetworkPluginNotReady"},
            ],
            "addresses": [{"type": "Hostname", "address": "wind"},
                          {"type": "InternalIP", "address": "31.31.164.222"}],
            "nodeInfo": {"kubeletVersion": "v1.36.3"},
        },
    }  # fmt: skip
    state = node_state(node)
    assert (state.name, state.ready, state.reason) == ("wind", False, "NetworkPluginNotReady")
    assert (state.address, state.kubelet_version) == ("31.31.164.222", "v1.36.3")
    assert not node_state({"metadata": {"name": "new"}}).ready


def test_addon_state_counts_ready_pods_against_those_wanted() -> None:
    proxy = {"kind": "DaemonSet", "metadata": {"name": "kube-proxy", "namespace": "kube-system"}}
    dns = {"kind": "Deployment", "metadata": {"name": "coredns", "namespace": "kube-system"}}
    live_proxy = {"status": {"desiredNumberScheduled": 3, "numberReady": 3}}
    assert addon_state(proxy, live_proxy).as_dict() == {
        "kind": "DaemonSet", "name": "kube-proxy", "namespace": "kube-system",
        "desired": 3, "ready": 3, "healthy": True,
    }  # fmt: skip
    # Before the pod network: the Deployment wants two, none is ready.
    starting = addon_state(dns, {"spec": {"replicas": 2}, "status": {}})
    assert (starting.desired, starting.ready, starting.healthy) == (2, 0, False)
    assert addon_state(dns, {"spec": {"replicas": 2}, "status": {"readyReplicas": 2}}).healthy
    missing = addon_state(dns, None)
    assert (missing.desired, missing.healthy) == (None, False)
