"""What the cluster needs to be usable, applied through the API once it answers.

RBAC that lets the API server reach kubelets (logs, exec, metrics) as the user its
kubelet client certificate names; kube-proxy as a DaemonSet reading the kubeconfig
and certificate the pki layer put on every node (the default binding of
``system:node-proxier`` to ``system:kube-proxy`` authorises it); CoreDNS with its
service on ``cluster_dns``. Kubelets authenticate with labctl-minted certificates
and are authorised by the Node authorizer, so no bootstrap token exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labctl.inventory.model import Inventory
from labctl.pki.placement import KUBE_DIR
from labctl.render.kubernetes import common as c
from labctl.render.quoting import dns_name

COREDNS_IMAGE = "coredns/coredns:v1.14.2"  # what kubeadm 1.36 deploys
SYSTEM = "kube-system"
Doc = dict[str, Any]


def _meta(name: str, namespace: str | None = None, **labels: str) -> Doc:
    meta: Doc = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    return meta


def apiserver_to_kubelet() -> list[Doc]:
    role = "system:kube-apiserver-to-kubelet"
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta(role),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": [
                        "nodes/proxy",
                        "nodes/stats",
                        "nodes/log",
                        "nodes/spec",
                        "nodes/metrics",
                        "nodes/pods",
                        "nodes/healthz",
                    ],
                    "verbs": ["*"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(role),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [
                {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "User",
                    "name": "kube-apiserver-kubelet-client",
                }
            ],
        },
    ]


def kube_proxy(inventory: Inventory, settings: Mapping[str, Any] | None = None) -> list[Doc]:
    """kube-proxy in iptables mode (the nft-backed iptables its image holds on the
    simulated lab); ``settings`` are the platform's, over the inventory's
    (``NodeRuntime.kube_proxy_settings``)."""
    k = inventory.cluster.kubernetes
    config: Doc = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": c.KUBECONFIGS["kube-proxy"]},
        "clusterCIDR": k.pod_cidr,
        "mode": "iptables",
    }
    config.update(settings or {})
    labels = {"k8s-app": "kube-proxy"}
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("kube-proxy", SYSTEM, **labels),
            "data": {"config.conf": c.to_yaml(config)},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": _meta("kube-proxy", SYSTEM, **labels),
            "spec": {
                "selector": {"matchLabels": labels},
                "updateStrategy": {"type": "RollingUpdate"},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "hostNetwork": True,
                        "priorityClassName": "system-node-critical",
                        "tolerations": [{"operator": "Exists"}],
                        "containers": [
                            {
                                "name": "kube-proxy",
                                "image": c.image(inventory, "kube-proxy"),
                                # The version-tagged name the layer imports on every node
                                # of the simulated lab: the kubelet must not try to pull it.
                                "imagePullPolicy": "IfNotPresent",
                                "command": [
                                    "kube-proxy",
                                    "--config=/var/lib/kube-proxy/config.conf",
                                    "--hostname-override=$(NODE_NAME)",
                                ],
                                "env": [
                                    {
                                        "name": "NODE_NAME",
                                        "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                                    }
                                ],
                                "securityContext": {"privileged": True},
                                "volumeMounts": [
                                    {"name": "config", "mountPath": "/var/lib/kube-proxy"},
                                    {
                                        "name": "kubeconfig",
                                        "mountPath": c.KUBECONFIGS["kube-proxy"],
                                        "readOnly": True,
                                    },
                                    {"name": "certs", "mountPath": KUBE_DIR, "readOnly": True},
                                    {"name": "xtables-lock", "mountPath": "/run/xtables.lock"},
                                    {
                                        "name": "lib-modules",
                                        "mountPath": "/lib/modules",
                                        "readOnly": True,
                                    },
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "config", "configMap": {"name": "kube-proxy"}},
                            {
                                "name": "kubeconfig",
                                "hostPath": {"path": c.KUBECONFIGS["kube-proxy"], "type": "File"},
                            },
                            {"name": "certs", "hostPath": {"path": KUBE_DIR, "type": "Directory"}},
                            {
                                "name": "xtables-lock",
                                "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"},
                            },
                            {"name": "lib-modules", "hostPath": {"path": "/lib/modules"}},
                        ],
                    },
                },
            },
        },
    ]


def coredns_image(inventory: Inventory) -> str:
    """CoreDNS's image under the inventory's registry (its tag is CoreDNS's own version)."""
    return f"{inventory.cluster.kubernetes.image_registry.rstrip('/')}/{COREDNS_IMAGE}"


def coredns(inventory: Inventory) -> list[Doc]:
    k = inventory.cluster.kubernetes
    labels = {"k8s-app": "kube-dns"}
    # A Corefile has blocks and words: only a DNS name stays one word in it.
    domain = dns_name("cluster_domain", k.cluster_domain)
    corefile = "\n".join(
        [
            ".:53 {",
            "    errors",
            "    health {",
            "       lameduck 5s",
            "    }",
            "    ready",
            f"    kubernetes {domain} in-addr.arpa ip6.arpa {{",
            "       pods insecure",
            "       fallthrough in-addr.arpa ip6.arpa",
            "       ttl 30",
            "    }",
            "    prometheus :9153",
            "    forward . /etc/resolv.conf {",
            "       max_concurrent 1000",
            "    }",
            "    cache 30",
            "    loop",
            "    reload",
            "    loadbalance",
            "}",
            "",
        ]
    )
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("coredns", SYSTEM)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta("system:coredns"),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta("system:coredns"),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:coredns",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": SYSTEM}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("coredns", SYSTEM),
            "data": {"Corefile": corefile},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta("coredns", SYSTEM, **labels),
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "priorityClassName": "system-cluster-critical",
                        "dnsPolicy": "Default",
                        "containers": [
                            {
                                "name": "coredns",
                                "image": coredns_image(inventory),
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                    {"name": "metrics", "containerPort": 9153, "protocol": "TCP"},
                                ],
                                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}},
                                "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}},
                                "volumeMounts": [
                                    {
                                        "name": "config",
                                        "mountPath": "/etc/coredns",
                                        "readOnly": True,
                                    }
                                ],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("kube-dns", SYSTEM, **labels),
            "spec": {
                "selector": labels,
                "clusterIP": c.cluster_dns(inventory),
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                    {"name": "metrics", "port": 9153, "protocol": "TCP"},
                ],
            },
        },
    ]


def all_addons(
    inventory: Inventory, kube_proxy_settings: Mapping[str, Any] | None = None
) -> list[Doc]:
    """Every object, in the order they are applied (RBAC first)."""
    return [
        *apiserver_to_kubelet(),
        *kube_proxy(inventory, kube_proxy_settings),
        *coredns(inventory),
    ]
