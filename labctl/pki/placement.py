"""Where each node's certificates and keys go, read from the store.

A node gets the CA in both trees, its own certificates and keys (etcd's under
``/etc/ssl/etcd``, the rest under ``/etc/kubernetes/ssl``; keys 0600), and a
control-plane node also the front-proxy CA, the service-account key pair with
its trust bundle, the cluster signer with its key, and the client-CA bundle (root CA
plus every cluster signer still trusted). Reads the store; writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from labctl.errors import LabctlError
from labctl.pki.specs import CLUSTER_SIGNER, SERVICE_ACCOUNT, PkiInput, plan_certificates

if TYPE_CHECKING:  # paths are wanted by renders that never read the store (nor load its crypto)
    from labctl.pki.store import PkiStore

ETCD_DIR = "/etc/ssl/etcd"
KUBE_DIR = "/etc/kubernetes/ssl"
CLIENT_CA_BUNDLE = "client-ca.pem"
# node-exporter's textfile collector reads every *.prom here (the monitoring layer's unit
# names this directory); the pki layer writes its certificates' expiry into TEXTFILE.
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
TEXTFILE = f"{TEXTFILE_DIR}/labctl_pki.prom"


@dataclass(frozen=True)
class NodeFile:
    path: str
    content: bytes = field(repr=False)
    mode: int
    secret: bool


def client_ca_bundle(ca: bytes, signer: bytes, trust: bytes) -> bytes:
    """What the API servers trust client certificates from: the root CA, the current
    cluster signer, and every earlier signer its trust bundle still holds. Pure.

    Minting writes the bundle with the current signer first; one written by hand
    without it still gets it."""
    parts = [ca, trust if signer.strip() in trust else signer + trust]
    return b"".join(p if p.endswith(b"\n") else p + b"\n" for p in parts if p.strip())


def node_files(inp: PkiInput, store: PkiStore, node: str) -> list[NodeFile]:
    """What ``node`` gets from the store, and where on the node."""

    files: list[NodeFile] = []
    ca = store.read_cert("ca")
    if ca is None:
        raise LabctlError("no CA in the PKI store yet; run `labctl pki mint`")
    files += [NodeFile(f"{d}/ca.pem", ca, 0o644, False) for d in (ETCD_DIR, KUBE_DIR)]
    control_plane = any(
        node in s.owner_nodes for s in plan_certificates(inp) if s.name == "apiserver"
    )
    for spec in plan_certificates(inp):
        if spec.is_ca or node not in spec.owner_nodes:
            continue
        cert, key = store.read_cert(spec.name), store.read_key(spec.name)
        if cert is None or key is None:
            raise LabctlError(f"{spec.name} is missing from the PKI store; run `labctl pki mint`")
        directory = ETCD_DIR if spec.name.startswith("etcd-") else KUBE_DIR
        files.append(NodeFile(f"{directory}/{spec.name}.pem", cert, 0o644, False))
        files.append(NodeFile(f"{directory}/{spec.name}-key.pem", key, 0o600, True))
    if control_plane:
        signer = store.read_cert(CLUSTER_SIGNER)
        if signer is not None:
            bundle = client_ca_bundle(ca, signer, store.read_trust(CLUSTER_SIGNER))
            files.append(NodeFile(f"{KUBE_DIR}/{CLIENT_CA_BUNDLE}", bundle, 0o644, False))
        front_proxy = store.read_cert("front-proxy-ca")
        if front_proxy is not None:
            files.append(NodeFile(f"{KUBE_DIR}/front-proxy-ca.pem", front_proxy, 0o644, False))
        for suffix, mode, secret in (
            (".key", 0o600, True),
            (".pub", 0o644, False),
            (".trust.pem", 0o644, False),
        ):
            path = store.path(f"{SERVICE_ACCOUNT}{suffix}")
            if path.exists():
                files.append(NodeFile(f"{KUBE_DIR}/{path.name}", path.read_bytes(), mode, secret))
    return files
