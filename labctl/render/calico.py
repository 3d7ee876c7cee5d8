"""The Calico resources of the lab's BGP fabric, as Kubernetes objects (pure).

IPPool (the pod CIDR, its block size, NAT), BGPConfiguration ``default`` (the
cluster's AS, the mesh, the service and ingress prefixes to announce), one
BGPPeer per switch peer (and one towards the route reflectors when there are
some), and each node's Node resource (its BGP address and AS, and the
route-reflector cluster id and label on reflectors). Passwords are references
to a Secret (``labctl-bgp``) that is created from the inventory's secret
references when the resources are applied; never values. The calico layer
applies them (``calico.resources``), with the Node settings as annotations on
the Kubernetes Nodes, which is where Calico's Kubernetes datastore keeps them.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from typing import Any

import yaml

from labctl.inventory import topology
from labctl.inventory.model import Inventory

API = "projectcalico.org/v3"
SECRET = "labctl-bgp"
RR_LABEL = "route-reflector"

Resource = dict[str, Any]


def _meta(name: str, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return meta


def _secret_key(name: str) -> dict[str, Any]:
    return {"secretKeyRef": {"name": SECRET, "key": name}}


def _duration(seconds: int) -> str:
    return f"{seconds}s"


def ip_pool(inventory: Inventory) -> Resource:
    k8s = inventory.cluster.kubernetes
    calico = inventory.cluster.calico
    return {
        "apiVersion": API,
        "kind": "IPPool",
        "metadata": _meta(f"{inventory.cluster.name}-pods"),
        "spec": {
            "cidr": k8s.pod_cidr,
            "blockSize": calico.block_size,
            # Routed by BGP as it is: the switches learn every block, so no overlay.
            "ipipMode": "Never",
            "vxlanMode": "Never",
            "natOutgoing": calico.nat_outgoing,
            "nodeSelector": "all()",
        },
    }


def bgp_configuration(inventory: Inventory) -> Resource:
    calico = inventory.cluster.calico
    spec: dict[str, Any] = {
        "logSeverityScreen": "Info",
        "nodeToNodeMeshEnabled": calico.node_to_node_mesh,
        "asNumber": calico.asn,
    }
    if calico.advertise.service_cidr:
        spec["serviceClusterIPs"] = [{"cidr": inventory.cluster.kubernetes.service_cidr}]
    external = topology.external_ranges(inventory)
    if external:
        spec["serviceExternalIPs"] = [{"cidr": cidr} for cidr, _ in external]
    if calico.node_to_node_mesh:
        # A mesh peer that vanished keeps its routes for this long (graceful restart).
        spec["nodeMeshMaxRestartTime"] = _duration(calico.hold_time)
    if calico.mesh_password is not None and calico.node_to_node_mesh:
        spec["nodeMeshPassword"] = _secret_key("mesh")
    return {
        "apiVersion": API,
        "kind": "BGPConfiguration",
        "metadata": _meta("default"),
        "spec": spec,
    }


def _selector(inventory: Inventory, nodes: str | tuple[str, ...], switch: str) -> str:
    if nodes == "attached":
        names = [
            s.name for s in topology.nodes(inventory) if any(n.switch == switch for n in s.nics)
        ]
    else:
        names = list(nodes)
    return "kubernetes.io/hostname in {" + ", ".join(f"'{n}'" for n in names) + "}"


def peer_name(switch: str, address: str) -> str:
    return f"{switch}-{re.sub(r'[^0-9a-z]', '-', address.lower())}"


def bgp_peers(inventory: Inventory) -> list[Resource]:
    calico = inventory.cluster.calico
    out = []
    for peer in calico.peers:
        sw = topology.switch(inventory, peer.switch)
        if sw is None or sw.asn is None:
            continue
        spec: dict[str, Any] = {"peerIP": peer.address, "asNumber": sw.asn}
        if peer.nodes != "all":
            # With no selector the peer is global, as calico-node's confd tells them
            # apart: its protocol is Global_<ip> (Node_<ip> with any selector, all()
            # included), which is what topology.sessions names it.
            spec["nodeSelector"] = _selector(inventory, peer.nodes, peer.switch)
        spec["keepaliveTime"] = _duration(calico.keepalive_time)
        spec["maxRestartTime"] = _duration(calico.hold_time)
        if peer.password is not None:
            spec["password"] = _secret_key(peer_name(peer.switch, peer.address))
        out.append(
            {
                "apiVersion": API,
                "kind": "BGPPeer",
                "metadata": _meta(peer_name(peer.switch, peer.address)),
                "spec": spec,
            }
        )
    if topology.reflectors(inventory) and not calico.node_to_node_mesh:
        out.append(
            {
                "apiVersion": API,
                "kind": "BGPPeer",
                "metadata": _meta("peer-with-route-reflectors"),
                "spec": {
                    "nodeSelector": "all()",
                    "peerSelector": f"{RR_LABEL} == 'true'",
                },
            }
        )
    return out


def nodes(inventory: Inventory) -> list[Resource]:
    calico = inventory.cluster.calico
    out = []
    rrs = {s.name for s in topology.reflectors(inventory)}
    for server in topology.nodes(inventory):
        address = topology.bgp_address(inventory, server)
        if address is None:
            continue
        network = next(
            (inventory.network(a.network) for a in server.addresses() if a.address == address),
            None,
        )
        prefix = ipaddress.ip_network(network.cidr).prefixlen if network else 32
        bgp: dict[str, Any] = {"ipv4Address": f"{address}/{prefix}", "asNumber": calico.asn}
        labels = {}
        if server.name in rrs:
            bgp["routeReflectorClusterID"] = calico.route_reflector_cluster_id
            labels[RR_LABEL] = "true"
        out.append(
            {
                "apiVersion": API,
                "kind": "Node",
                "metadata": _meta(server.name, **labels),
                "spec": {"bgp": bgp},
            }
        )
    return out


def resources(inventory: Inventory) -> list[Resource]:
    """Every resource, in the order they are applied (pool and config before peers)."""
    return [
        ip_pool(inventory),
        bgp_configuration(inventory),
        *bgp_peers(inventory),
        *nodes(inventory),
    ]


def resources_yaml(inventory: Inventory) -> str:
    """The resources as one multi-document YAML file (what calicoctl and kubectl read)."""
    return yaml.safe_dump_all(resources(inventory), sort_keys=False, default_flow_style=False)


# How Calico's Kubernetes datastore keeps its Node resource: on the Kubernetes Node,
# as these annotations (and the reflector label), not as an object of its own.
NODE_ANNOTATIONS = {
    "ipv4Address": "projectcalico.org/IPv4Address",
    "asNumber": "projectcalico.org/ASNumber",
    "routeReflectorClusterID": "projectcalico.org/RouteReflectorClusterID",
}
# Where calico-node runs in a manifest install, and so where it reads BGP passwords.
SECRET_NAMESPACE = "kube-system"
CALICO_NODE_ACCOUNT = "calico-node"


def kubernetes_nodes(inventory: Inventory) -> list[Resource]:
    """Each Calico Node as the apply patch of its Kubernetes Node (annotations, label)."""
    out = []
    for node in nodes(inventory):
        bgp = node["spec"]["bgp"]
        meta: dict[str, Any] = {
            "name": node["metadata"]["name"],
            "annotations": {NODE_ANNOTATIONS[k]: str(v) for k, v in bgp.items()},
        }
        if "labels" in node["metadata"]:
            meta["labels"] = node["metadata"]["labels"]
        out.append({"apiVersion": "v1", "kind": "Node", "metadata": meta})
    return out


def password_keys(inventory: Inventory) -> list[tuple[str, str]]:
    """(key in the ``labctl-bgp`` Secret, where the inventory names the password)."""
    calico = inventory.cluster.calico
    keys = []
    if calico.mesh_password is not None and calico.node_to_node_mesh:
        keys.append(("mesh", "cluster.calico.mesh_password"))
    for i, peer in enumerate(calico.peers):
        if peer.password is not None:
            keys.append(
                (peer_name(peer.switch, peer.address), f"cluster.calico.peers[{i}].password")
            )
    return keys


def password_access(inventory: Inventory, values: dict[str, str]) -> list[Resource]:
    """The ``labctl-bgp`` Secret (base64 ``data``, as the API stores it) and the Role
    that lets calico-node read it; nothing when no session has a password."""
    if not values:
        return []
    role_meta = {"name": "calico-read-bgp-passwords", "namespace": SECRET_NAMESPACE}
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET, "namespace": SECRET_NAMESPACE},
            "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(values.items())},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": role_meta,
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": [SECRET],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": role_meta,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": role_meta["name"],
            },
            "subjects": [
                {
                    "kind": "ServiceAccount",
                    "name": CALICO_NODE_ACCOUNT,
                    "namespace": SECRET_NAMESPACE,
                }
            ],
        },
    ]


def calico_kinds(inventory: Inventory) -> list[Resource]:
    """What goes to the API as Calico's own kinds (Nodes go as Kubernetes Nodes)."""
    return [ip_pool(inventory), bgp_configuration(inventory), *bgp_peers(inventory)]
