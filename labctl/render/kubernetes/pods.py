"""Static pod manifests for the control plane, as a real lab's kubelet runs them.

One Pod per component in ``/etc/kubernetes/manifests`` on each control-plane node:
the upstream image at the inventory's version, host network, the component's flags
(``flags.py``), read-only host paths for its certificates and kubeconfig, and a
liveness probe on its own secure health endpoint.
"""

from __future__ import annotations

from typing import Any

from labctl.inventory.model import Inventory, Server
from labctl.pki.placement import ETCD_DIR, KUBE_DIR
from labctl.render.kubernetes import common as c
from labctl.render.kubernetes import flags

Volume = tuple[str, str, str, bool]  # name, host path, hostPath type, read-only


def _volumes(component: str) -> list[Volume]:
    found: list[Volume] = [("k8s-certs", KUBE_DIR, "Directory", True)]
    if component == "kube-apiserver":
        found += [
            ("etcd-certs", ETCD_DIR, "Directory", True),
            ("audit-policy", c.AUDIT_POLICY, "File", True),
            ("audit-log", c.AUDIT_LOG_DIR, "DirectoryOrCreate", False),
        ]
    else:
        found.append(("kubeconfig", c.KUBECONFIGS[component], "File", True))
    return found


def _probe(inventory: Inventory, server: Server, component: str) -> dict[str, Any]:
    if component == "kube-apiserver":
        host = c.node_address(inventory, server)
        port, path = inventory.cluster.kubernetes.api_endpoint.port, "/livez"
    else:
        host, port, path = "127.0.0.1", c.HEALTH_PORTS[component], "/healthz"
    return {
        "httpGet": {"host": host, "path": path, "port": port, "scheme": "HTTPS"},
        "initialDelaySeconds": 10,
        "periodSeconds": 10,
        "timeoutSeconds": 15,
        "failureThreshold": 8,
    }


def static_pod(inventory: Inventory, server: Server, component: str) -> dict[str, Any]:
    volumes = _volumes(component)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": component,
            "namespace": "kube-system",
            "labels": {"component": component, "tier": "control-plane"},
        },
        "spec": {
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": component,
                    "image": c.image(inventory, component),
                    "imagePullPolicy": "IfNotPresent",
                    "command": [component, *flags.component(inventory, server, component)],
                    "resources": {"requests": {"cpu": "100m"}},
                    "livenessProbe": _probe(inventory, server, component),
                    "volumeMounts": [
                        {"name": name, "mountPath": path, "readOnly": ro}
                        for name, path, _, ro in volumes
                    ],
                }
            ],
            "volumes": [
                {"name": name, "hostPath": {"path": path, "type": kind}}
                for name, path, kind, _ in volumes
            ],
        },
    }


def manifest_path(component: str) -> str:
    return f"{c.MANIFESTS_DIR}/{component}.yaml"
