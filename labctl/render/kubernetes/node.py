"""Everything one node gets from the Kubernetes layer, grouped by the service that reads it.

A service restarts when the digest of what it reads changes: its own files here
and, passed in by the layer, the certificates the pki layer pushed to the node
(``pki_digest``), so a rotation restarts what holds the old certificates. Static
pods carry that digest as an annotation: the kubelet restarts a static pod when
its manifest changes, and only then.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from labctl.inventory.model import Inventory, Server
from labctl.platform import NodeFile, NodeRuntime
from labctl.render.kubernetes import audit, host, kubelet, pods
from labctl.render.kubernetes import common as c
from labctl.render.kubernetes.kubeconfig import node_kubeconfig
from labctl.render.systemd import unit_text

PKI_ANNOTATION = "labctl.dev/pki-digest"


@dataclass(frozen=True)
class File:
    path: str
    content: str = field(repr=False)
    mode: int = 0o644


@dataclass(frozen=True)
class Service:
    """A unit and the files it reads; ``digest`` decides its restarts."""

    unit: str
    files: tuple[File, ...]
    pki_digest: str = ""

    @property
    def digest(self) -> str:
        h = hashlib.sha256(self.pki_digest.encode())
        for f in self.files:
            h.update(f"{f.path}\0{f.mode}\0{f.content}\0".encode())
        return h.hexdigest()


def _file(f: NodeFile) -> File:
    return File(f.path, f.content, f.mode)


def _unit_file(name: str, text: str) -> File:
    return File(host.unit_path(name), text)


def _kubeconfig(inventory: Inventory, component: str, user: str, cert: str) -> File:
    return File(c.KUBECONFIGS[component], c.to_yaml(node_kubeconfig(inventory, user, cert)), 0o600)


def static_pods(inventory: Inventory, server: Server, pki_digest: str = "") -> list[File]:
    files = []
    for component in c.CONTROL_PLANE:
        pod = pods.static_pod(inventory, server, component)
        if pki_digest:
            pod["metadata"]["annotations"] = {PKI_ANNOTATION: pki_digest}
        files.append(File(pods.manifest_path(component), c.to_yaml(pod), 0o600))
    return files


def services(
    inventory: Inventory,
    server: Server,
    runtime: str,
    bin_dir: str,
    pki_digest: str = "",
    *,
    node: NodeRuntime = NodeRuntime(),
) -> list[Service]:
    """The node's services in start order (the kubelet last: it needs containerd).
    ``node`` is the platform's (``Platform.node_runtime``): its services come first (the
    simulated lab's own containerd), its settings and wrapper go to the kubelet."""
    found = [Service(unit, tuple(_file(f) for f in files)) for unit, files in node.services]
    control_plane = server in c.control_plane(inventory)
    shared: list[File] = []
    if control_plane:
        shared.append(File(c.AUDIT_POLICY, c.to_yaml(audit.policy())))
        cm = _kubeconfig(
            inventory, "kube-controller-manager", "system:kube-controller-manager",
            "kube-controller-manager",
        )  # fmt: skip
        sched = _kubeconfig(inventory, "kube-scheduler", "system:kube-scheduler", "kube-scheduler")
        if not c.static_pods(runtime):
            per = {"kube-apiserver": [shared[0]], "kube-controller-manager": [cm],
                   "kube-scheduler": [sched]}  # fmt: skip
            for component in c.CONTROL_PLANE:
                name = host.unit_name(component)
                text = unit_text(host.component_unit(inventory, server, component, bin_dir))
                found.append(Service(name, (*per[component], _unit_file(name, text)), pki_digest))
        else:
            shared += [cm, sched, *static_pods(inventory, server, pki_digest)]
    kubelet_files = [
        *(shared if c.static_pods(runtime) else []),
        File(c.KUBELET_CONFIG, c.to_yaml(kubelet.configuration(inventory, server, node))),
        _kubeconfig(
            inventory, "kubelet", f"system:node:{server.name}", f"kubelet-client-{server.name}"
        ),
        _kubeconfig(inventory, "kube-proxy", "system:kube-proxy", "kube-proxy"),
        _unit_file(kubelet.UNIT_NAME, unit_text(kubelet.unit(inventory, server, bin_dir, node))),
    ]
    if node.kubelet_wrapper is not None:
        kubelet_files.append(_file(node.kubelet_wrapper))
    found.append(Service(kubelet.UNIT_NAME, tuple(kubelet_files), pki_digest))
    return found
