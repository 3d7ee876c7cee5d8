"""Where the monitoring programs find their files, on a server or the operator's machine.

The renders name files (client certificates, rule files, receiver secrets) rather
than hold their content, so the paths are one record the layer and the tests can
change together: the tests point every path into a temporary directory and let
promtool and amtool check that the files are there. The certificate paths are the
ones the pki layer uses for every identity (``labctl/pki/placement.py``): etcd's
under /etc/ssl/etcd, the rest under /etc/kubernetes/ssl, named after the
certificate, here the new ``prometheus`` identity.
"""

from __future__ import annotations

from dataclasses import dataclass

from labctl.pki.placement import ETCD_DIR, KUBE_DIR, TEXTFILE

IDENTITY = "prometheus"  # the certificate's CN: the RBAC subject that may read metrics
# What labctl writes into node-exporter's textfile folder on every node (the pki layer's
# certificate expiry): `labctl reset` removes them with the rest of what labctl put there.
NODE_TEXTFILES = (TEXTFILE,)
# calico-node's BIRD control socket, in the folder calico-node's pod mounts from the host
# (hostPath /var/run/calico; BIRD 1.6's socket bird.ctl), where the BGP exporter reads it.
BIRD_RUN_DIR = "/var/run/calico"
BIRD_SOCKET = f"{BIRD_RUN_DIR}/bird.ctl"


@dataclass(frozen=True)
class Paths:
    etcd_ca: str
    etcd_cert: str
    etcd_key: str
    kube_ca: str
    kube_cert: str
    kube_key: str
    rules: str  # the rendered alerting rules, read by Prometheus
    secrets: str  # directory of receiver secrets (0600, Alertmanager's user), one file each
    snmp_exporter: str = "127.0.0.1:9116"  # beside Prometheus, so the exporters stay local
    ipmi_exporter: str = "127.0.0.1:9290"

    def secret_file(self, receiver: str, field: str) -> str:
        return f"{self.secrets}/{receiver}-{field}"


def under(root: str) -> Paths:
    """Every file under ``root`` (the operator's machine, or a test's tmp dir)."""
    return Paths(
        etcd_ca=f"{root}/etcd-ca.pem",
        etcd_cert=f"{root}/etcd-client-{IDENTITY}.pem",
        etcd_key=f"{root}/etcd-client-{IDENTITY}-key.pem",
        kube_ca=f"{root}/ca.pem",
        kube_cert=f"{root}/{IDENTITY}.pem",
        kube_key=f"{root}/{IDENTITY}-key.pem",
        rules=f"{root}/labctl-rules.yml",
        secrets=f"{root}/secrets",
    )


# The pki layer places the prometheus identity's keys root's and 0600, as every key;
# Prometheus runs as its own user, so its unit copies them (as root, at each start) into
# a folder only that user reads, and Prometheus reads the copies (render/monitoring/units.py).
PLACED_ETCD_KEY = f"{ETCD_DIR}/etcd-client-{IDENTITY}-key.pem"
PLACED_KUBE_KEY = f"{KUBE_DIR}/{IDENTITY}-key.pem"
KEYS_DIR = "/var/lib/prometheus/labctl-keys"

SERVER_PATHS = Paths(
    etcd_ca=f"{ETCD_DIR}/ca.pem",
    etcd_cert=f"{ETCD_DIR}/etcd-client-{IDENTITY}.pem",
    etcd_key=f"{KEYS_DIR}/etcd-client-{IDENTITY}-key.pem",
    kube_ca=f"{KUBE_DIR}/ca.pem",
    kube_cert=f"{KUBE_DIR}/{IDENTITY}.pem",
    kube_key=f"{KEYS_DIR}/{IDENTITY}-key.pem",
    rules="/etc/prometheus/labctl-rules.yml",
    secrets="/etc/prometheus/alertmanager-secrets",
)
OPERATOR_PATHS = under(".labctl/monitoring")
