"""What certificates a lab needs, as pure data (no I/O, no crypto)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

# Profile -> X.509 usages. etcd serves *and* dials (gateway/grpc-proxy, health
# checks between members), so its server and peer certs carry both auth usages.
PROFILE_USAGES: dict[str, tuple[str, ...]] = {
    "ca": ("cert sign", "crl sign"),
    "server": ("signing", "key encipherment", "server auth"),
    "client": ("signing", "key encipherment", "client auth"),
    "peer": ("signing", "key encipherment", "server auth", "client auth"),
    "server-client": ("signing", "key encipherment", "server auth", "client auth"),
    # A CA that may sign leaves only (path length 0); its key lives on nodes.
    "intermediate-ca": ("cert sign", "crl sign"),
}

SERVICE_ACCOUNT = "service-account"
# kube-controller-manager signs certificates.k8s.io requests with this intermediate CA:
# the root CA's key never leaves the operator's machine, this one's goes to the
# control-plane nodes only, and the API servers trust what it signs through the
# client-CA bundle (root + current and earlier signers).
CLUSTER_SIGNER = "cluster-signing-ca"


@dataclass(frozen=True)
class PkiNode:
    name: str
    addresses: tuple[str, ...]
    roles: frozenset[str]
    # The names the lab publishes for the node (its FQDN in lab.domain,
    # inventory/naming.py): what `inventory export hosts` writes, so clients dial them.
    dns_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class PkiInput:
    cluster_name: str
    cluster_domain: str
    service_cidr: str
    api_endpoint_name: str
    api_endpoint_address: str
    nodes: tuple[PkiNode, ...]
    operator: str
    validity_days: int = 365
    ca_validity_days: int = 3650
    key_algo: str = "ecdsa"
    key_size: int = 256
    # Where Prometheus runs (cluster.monitoring): the servers that get its client
    # certificates; empty when it runs on the operator's machine.
    monitoring: tuple[str, ...] = ()


@dataclass(frozen=True)
class CertSpec:
    name: str
    ca: str
    common_name: str
    organizations: tuple[str, ...]
    hosts: tuple[str, ...]
    profile: str
    owner_nodes: tuple[str, ...]
    validity_days: int
    key_algo: str = "ecdsa"
    key_size: int = 256

    @property
    def usages(self) -> tuple[str, ...]:
        return PROFILE_USAGES[self.profile]

    @property
    def is_ca(self) -> bool:
        return self.profile == "ca"

    @property
    def is_intermediate(self) -> bool:
        return self.profile == "intermediate-ca"

    @property
    def dns_names(self) -> tuple[str, ...]:
        return tuple(h for h in self.hosts if not _is_ip(h))

    @property
    def ip_addresses(self) -> tuple[str, ...]:
        return tuple(h for h in self.hosts if _is_ip(h))


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _uniq(items: list[str]) -> tuple[str, ...]:
    # Keep first-seen order: SAN order is stable so renders are deterministic.
    return tuple(dict.fromkeys(items))


def node_hosts(inp: PkiInput, node: PkiNode) -> list[str]:
    """A node's names (short, as the lab publishes it, and under the cluster name) and
    all its addresses."""
    return [node.name, *node.dns_names, f"{node.name}.{inp.cluster_name}", *node.addresses]


def plan_certificates(inp: PkiInput) -> list[CertSpec]:
    """Every certificate the lab needs, CAs first, in a stable order."""

    def mk(
        name: str,
        ca: str,
        cn: str,
        orgs: tuple[str, ...],
        hosts: tuple[str, ...],
        profile: str,
        owners: tuple[str, ...],
    ) -> CertSpec:
        days = inp.ca_validity_days if profile == "ca" else inp.validity_days
        return CertSpec(
            name, ca, cn, orgs, hosts, profile, owners, days, inp.key_algo, inp.key_size
        )

    org = (inp.cluster_name,)
    specs = [
        mk("ca", "ca", f"{inp.cluster_name} CA", org, (), "ca", ()),
        mk(
            "front-proxy-ca",
            "front-proxy-ca",
            f"{inp.cluster_name} front-proxy CA",
            org,
            (),
            "ca",
            (),
        ),
    ]
    etcd_nodes = [n for n in inp.nodes if "etcd" in n.roles]
    cp_nodes = [n for n in inp.nodes if "control-plane" in n.roles]
    cp = tuple(n.name for n in cp_nodes)
    for n in etcd_nodes:
        # Loopback on the server cert: local etcdctl and the apiserver on the same
        # host dial 127.0.0.1.
        server_hosts = _uniq([*node_hosts(inp, n), "localhost", "127.0.0.1"])
        specs.append(
            mk(f"etcd-server-{n.name}", "ca", n.name, (), server_hosts, "server-client", (n.name,))
        )
        specs.append(
            mk(
                f"etcd-peer-{n.name}",
                "ca",
                n.name,
                (),
                _uniq(node_hosts(inp, n)),
                "peer",
                (n.name,),
            )
        )
    specs.append(
        mk("etcd-client-apiserver", "ca", "kube-apiserver-etcd-client", (), (), "client", cp)
    )
    specs.append(mk(f"etcd-client-{inp.operator}", "ca", inp.operator, (), (), "client", ()))
    # Prometheus reads etcd's /metrics with a client certificate of its own (any
    # certificate the CA signed may; etcd has no finer rights for /metrics).
    specs.append(mk("etcd-client-prometheus", "ca", "prometheus", (), (), "client", inp.monitoring))

    svc_ip = str(next(ipaddress.ip_network(inp.service_cidr, strict=False).hosts()))
    api_hosts = [
        svc_ip,
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{inp.cluster_domain}",
        inp.api_endpoint_name,
        inp.api_endpoint_address,
    ]
    for n in cp_nodes:
        api_hosts.extend(node_hosts(inp, n))
    specs.append(mk("apiserver", "ca", "kube-apiserver", (), _uniq(api_hosts), "server", cp))
    specs.append(
        mk(
            "apiserver-kubelet-client",
            "ca",
            "kube-apiserver-kubelet-client",
            ("system:masters",),
            (),
            "client",
            cp,
        )
    )
    for n in inp.nodes:
        specs.append(
            mk(
                f"kubelet-{n.name}",
                "ca",
                f"system:node:{n.name}",
                ("system:nodes",),
                _uniq(node_hosts(inp, n)),
                "server",
                (n.name,),
            )
        )
        specs.append(
            mk(
                f"kubelet-client-{n.name}",
                "ca",
                f"system:node:{n.name}",
                ("system:nodes",),
                (),
                "client",
                (n.name,),
            )
        )
    everyone = tuple(n.name for n in inp.nodes)
    specs += [
        mk("admin", "ca", inp.operator, ("system:masters",), (), "client", ()),
        mk("kube-controller-manager", "ca", "system:kube-controller-manager", (), (), "client", cp),
        mk("kube-scheduler", "ca", "system:kube-scheduler", (), (), "client", cp),
        mk("kube-proxy", "ca", "system:kube-proxy", (), (), "client", everyone),
        # calico-node's ServiceAccount as a client certificate (its user name and groups),
        # for calico-node's programs where they run outside its pod (the simulated
        # lab's confd and CNI plugin): RBAC grants a ServiceAccount subject to that user
        # name, so they get exactly the rights Calico's manifest gives the account.
        mk(
            "calico-node",
            "ca",
            "system:serviceaccount:kube-system:calico-node",
            ("system:serviceaccounts", "system:serviceaccounts:kube-system"),
            (),
            "client",
            everyone,
        ),
        mk("front-proxy-client", "front-proxy-ca", "front-proxy-client", (), (), "client", cp),
        # No group: the user "prometheus" gets only what the labctl:prometheus ClusterRole
        # grants (render/monitoring/prometheus.py's rbac: /metrics and nodes/metrics).
        mk("prometheus", "ca", "prometheus", (), (), "client", inp.monitoring),
        # Leaf validity, not a CA's: its key sits on nodes, so it rotates with the leaves.
        mk(
            CLUSTER_SIGNER,
            "ca",
            f"{inp.cluster_name} cluster signing CA",
            org,
            (),
            "intermediate-ca",
            cp,
        ),
    ]
    return specs
