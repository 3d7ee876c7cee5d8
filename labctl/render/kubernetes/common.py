"""Names, paths on nodes and addresses that every Kubernetes render shares.

Certificates sit where ``pki/placement.py`` puts them (``/etc/kubernetes/ssl``,
etcd's under ``/etc/ssl/etcd``); everything else the layer writes lives under
``/etc/kubernetes``. The control plane reaches etcd on every member's client URL and
clients reach the API on ``cluster.kubernetes.api_endpoint``.
"""

from __future__ import annotations

import ipaddress
import posixpath
from typing import Any

import yaml

from labctl.inventory.export import primary_address
from labctl.inventory.model import Inventory, Server
from labctl.pki.placement import ETCD_DIR, KUBE_DIR

CONFIG_DIR = "/etc/kubernetes"
MANIFESTS_DIR = f"{CONFIG_DIR}/manifests"
ADDONS_DIR = f"{CONFIG_DIR}/addons"
AUDIT_POLICY = f"{CONFIG_DIR}/audit-policy.yaml"
AUDIT_LOG_DIR = "/var/log/kubernetes"
KUBELET_CONFIG = f"{CONFIG_DIR}/kubelet-config.yaml"
KUBELET_DIR = "/var/lib/kubelet"
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"

CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
RUNTIMES = ("static-pods", "host")
# The simulated lab's runtimes (its platform's, never the inventory's): "host" runs the
# control plane as units, "pods" runs the static pods from images imported into each
# node's containerd. Whether nodes share a kernel is the platform's to say
# (``Platform.node_runtime``), not the runtime's.
SIM_RUNTIMES = ("host", "pods")

# The kubeconfig each client reads, by the name of its certificate in the store.
KUBECONFIGS = {
    "kube-controller-manager": f"{CONFIG_DIR}/controller-manager.conf",
    "kube-scheduler": f"{CONFIG_DIR}/scheduler.conf",
    "kube-proxy": f"{CONFIG_DIR}/kube-proxy.conf",
    "kubelet": f"{CONFIG_DIR}/kubelet.conf",
}

# Where the secure health endpoints of the components listen on their node.
HEALTH_PORTS = {"kube-controller-manager": 10257, "kube-scheduler": 10259, "kubelet": 10250}


def ssl(name: str) -> str:
    """A file the pki layer pushed under /etc/kubernetes/ssl."""
    return f"{KUBE_DIR}/{name}"


def etcd_ssl(name: str) -> str:
    return f"{ETCD_DIR}/{name}"


def version(inventory: Inventory) -> str:
    """The release tag, e.g. v1.36.3 (what images and the build are named by)."""
    return f"v{inventory.cluster.kubernetes.version}"


def runtime(inventory: Inventory, override: str | None = None) -> str:
    """How the control plane runs: ``override`` (the platform's), else the inventory's."""
    chosen = override or inventory.cluster.kubernetes.runtime
    if chosen not in (*RUNTIMES, *SIM_RUNTIMES):
        known = ", ".join(dict.fromkeys((*RUNTIMES, *SIM_RUNTIMES)))
        raise ValueError(f"kubernetes runtime {chosen!r} is not one of {known}")
    return chosen


def static_pods(runtime: str) -> bool:
    """Whether the kubelet runs the control plane from manifests (else host units)."""
    return runtime != "host"


def bin_dir(inventory: Inventory, override: str | None = None) -> str:
    """binary_dir, or ``override`` (the platform's), where "{version}" stands for v1.36.3."""
    chosen = (override or inventory.cluster.kubernetes.binary_dir).rstrip("/") or "/"
    return chosen.replace("{version}", version(inventory))


def image_dir(bin_dir: str) -> str:
    """Where the pods runtime finds its image archives: beside the build cache's bin
    folder (``.../v1.36.3/bin`` -> ``.../v1.36.3/images``), as labctl/sim/images.py puts them."""
    return posixpath.join(posixpath.dirname(bin_dir.rstrip("/")), "images")


def node_binaries(inventory: Inventory, server: Server, runtime: str) -> list[str]:
    """The Kubernetes binaries ``server`` runs from binary_dir: the kubelet, and the
    control plane's too where it runs as units (static pods carry theirs in images)."""
    units = not static_pods(runtime) and server in control_plane(inventory)
    return [*(CONTROL_PLANE if units else ()), "kubelet"]


def binaries_by_node(inventory: Inventory, runtime: str) -> dict[str, list[str]]:
    """What every node must hold in binary_dir (``node_binaries``), by server name."""
    return {server.name: node_binaries(inventory, server, runtime) for server in nodes(inventory)}


def control_plane(inventory: Inventory) -> list[Server]:
    return inventory.with_role("control-plane")


def nodes(inventory: Inventory) -> list[Server]:
    """Every server runs a kubelet and becomes a Node."""
    return list(inventory.servers)


def node_address(inventory: Inventory, server: Server) -> str:
    found = primary_address(server, inventory)
    if found is None:  # LAB056 refuses such an inventory; this says why if one slips by
        raise ValueError(f"{server.name} has no address the kubelet could register with")
    return found


def api_url(inventory: Inventory) -> str:
    """The API as clients dial it: the endpoint's address (names may not resolve yet)."""
    api = inventory.cluster.kubernetes.api_endpoint
    return f"https://{api.address}:{api.port}"


def service_network(inventory: Inventory) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(inventory.cluster.kubernetes.service_cidr, strict=False)


def cluster_dns(inventory: Inventory) -> str:
    """CoreDNS's service address: cluster_dns, else the tenth address of service_cidr."""
    k = inventory.cluster.kubernetes
    if k.cluster_dns:
        return k.cluster_dns
    return str(service_network(inventory).network_address + 10)


def service_account_issuer(inventory: Inventory) -> str:
    return f"https://kubernetes.default.svc.{inventory.cluster.kubernetes.cluster_domain}"


def etcd_servers(inventory: Inventory) -> str:
    # Imported here: render.etcd is the one place that knows members' client URLs.
    from labctl.render.etcd import client_url, members

    return ",".join(client_url(inventory, s) for s in members(inventory))


def image(inventory: Inventory, component: str) -> str:
    registry = inventory.cluster.kubernetes.image_registry.rstrip("/")
    return f"{registry}/{component}:{version(inventory)}"


def to_yaml(*documents: Any) -> str:
    """YAML text in the order given (keys are not sorted: manifests read as written)."""
    return "---\n".join(
        yaml.safe_dump(d, sort_keys=False, default_flow_style=False) for d in documents
    )
