"""kubeconfig files: the nodes' (certificates by path) and the operator's (embedded).

A node's kubeconfig names its certificate files rather than holding them, so a
certificate rotation changes the files the pki layer pushes and not the
kubeconfig; the operator's (``labctl kubeconfig``) carries everything inline, to be
usable from anywhere.
"""

from __future__ import annotations

import base64
from typing import Any

from labctl.inventory.model import Inventory
from labctl.render.kubernetes import common as c


def _config(
    inventory: Inventory, user: str, cluster: dict[str, Any], auth: dict[str, Any]
) -> dict[str, Any]:
    name = inventory.cluster.name
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": user, "user": auth}],
        "contexts": [{"name": f"{user}@{name}", "context": {"cluster": name, "user": user}}],
        "current-context": f"{user}@{name}",
        "preferences": {},
    }


def node_kubeconfig(inventory: Inventory, user: str, cert: str) -> dict[str, Any]:
    """A component's kubeconfig on a node: ``cert`` is the store name of its client cert."""
    cluster = {"server": c.api_url(inventory), "certificate-authority": c.ssl("ca.pem")}
    auth = {"client-certificate": c.ssl(f"{cert}.pem"), "client-key": c.ssl(f"{cert}-key.pem")}
    return _config(inventory, user, cluster, auth)


def embedded_kubeconfig(
    inventory: Inventory, user: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes
) -> dict[str, Any]:
    """A self-contained kubeconfig (the operator's): CA, certificate and key inline."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    cluster = {
        "server": c.api_url(inventory),
        "certificate-authority-data": b64(ca_pem),
    }
    auth = {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}
    return _config(inventory, user, cluster, auth)
