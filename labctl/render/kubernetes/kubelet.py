"""The kubelet's configuration and unit on every node.

KubeletConfiguration: webhook authentication and authorization against the API,
client certificates checked against the lab CA, the node's serving certificate
from the pki layer (labctl rotates it, so the kubelet does not), cluster DNS on
the service network, static pods from ``/etc/kubernetes/manifests``, containerd's
socket. The platform may change settings and wrap the kubelet's start
(``Platform.node_runtime``): the simulated lab's nodes share one kernel, and what a
shared host forces lives with the simulation (``labctl/sim/render/kubernetes.py``);
never a matter of the inventory's runtime.
"""

from __future__ import annotations

from typing import Any

from labctl.inventory.model import Inventory, Server
from labctl.platform import NodeRuntime
from labctl.render.kubernetes import common as c
from labctl.render.kubernetes import flags
from labctl.render.systemd import Unit, exec_command

UNIT_NAME = "kubelet.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT_NAME}"


def configuration(
    inventory: Inventory, server: Server, node: NodeRuntime = NodeRuntime()
) -> dict[str, Any]:
    """The KubeletConfiguration, with the platform's settings over the inventory's."""
    k = inventory.cluster.kubernetes
    config: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": c.ssl("ca.pem")},
        },
        "authorization": {"mode": "Webhook"},
        "clusterDNS": [c.cluster_dns(inventory)],
        "clusterDomain": k.cluster_domain,
        "staticPodPath": c.MANIFESTS_DIR,
        "tlsCertFile": c.ssl(f"kubelet-{server.name}.pem"),
        "tlsPrivateKeyFile": c.ssl(f"kubelet-{server.name}-key.pem"),
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "containerRuntimeEndpoint": f"unix://{c.CONTAINERD_SOCKET}",
        "cgroupDriver": "systemd",
        "readOnlyPort": 0,
    }
    config.update(node.kubelet_settings)
    return config


def exec_start(inventory: Inventory, server: Server, bin_dir: str, node: NodeRuntime) -> str:
    argv = [f"{bin_dir}/kubelet", *flags.kubelet(inventory, server)]
    if node.kubelet_wrapper is not None:
        argv = ["/bin/sh", node.kubelet_wrapper.path, *argv]
    return exec_command(argv)


def unit(
    inventory: Inventory, server: Server, bin_dir: str, node: NodeRuntime = NodeRuntime()
) -> Unit:
    return {
        "Unit": [
            ("Description", f"Kubernetes kubelet on {server.name} (written by labctl)"),
            ("Wants", "network-online.target containerd.service"),
            ("After", "network-online.target containerd.service"),
        ],
        "Service": [
            ("ExecStartPre", exec_command(["/bin/mkdir", "-p", c.MANIFESTS_DIR, c.KUBELET_DIR])),
            ("ExecStart", exec_start(inventory, server, bin_dir, node)),
            ("Restart", "always"),
            ("RestartSec", "5"),
        ],
        "Install": [("WantedBy", "multi-user.target")],
    }
