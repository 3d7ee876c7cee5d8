"""Each control-plane component's command line, from the inventory.

The one source of the flags: a static pod's ``command`` and a host unit's
``ExecStart`` are both made from these lists, so the two runtimes cannot drift.
"""

from __future__ import annotations

from labctl.inventory.model import Inventory, Server
from labctl.pki.placement import CLIENT_CA_BUNDLE
from labctl.pki.specs import CLUSTER_SIGNER
from labctl.render.kubernetes import common as c


def _args(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"--{key}={value}" for key, value in pairs]


def apiserver(inventory: Inventory, server: Server) -> list[str]:
    k = inventory.cluster.kubernetes
    return _args(
        [
            ("advertise-address", c.node_address(inventory, server)),
            ("secure-port", str(k.api_endpoint.port)),
            ("allow-privileged", "true"),
            # Kubelets hold certificates labctl minted (system:node:NAME in
            # system:nodes), so the Node authorizer and NodeRestriction confine each
            # to its own Node and pods; no bootstrap tokens are needed.
            ("authorization-mode", "Node,RBAC"),
            ("enable-admission-plugins", "NodeRestriction"),
            ("anonymous-auth", "true"),  # /readyz, /livez for probes; RBAC allows no more
            # The root CA and the cluster signers: certificates issued through
            # certificates.k8s.io authenticate too, also after the signer's rotation.
            ("client-ca-file", c.ssl(CLIENT_CA_BUNDLE)),
            ("tls-cert-file", c.ssl("apiserver.pem")),
            ("tls-private-key-file", c.ssl("apiserver-key.pem")),
            ("etcd-servers", c.etcd_servers(inventory)),
            ("etcd-cafile", c.etcd_ssl("ca.pem")),
            ("etcd-certfile", c.etcd_ssl("etcd-client-apiserver.pem")),
            ("etcd-keyfile", c.etcd_ssl("etcd-client-apiserver-key.pem")),
            ("kubelet-client-certificate", c.ssl("apiserver-kubelet-client.pem")),
            ("kubelet-client-key", c.ssl("apiserver-kubelet-client-key.pem")),
            ("kubelet-certificate-authority", c.ssl("ca.pem")),
            ("kubelet-preferred-address-types", "InternalIP,Hostname"),
            ("service-cluster-ip-range", k.service_cidr),
            ("service-account-issuer", c.service_account_issuer(inventory)),
            # The trust bundle holds the current and the previous public keys, so
            # tokens signed before a rotation stay valid until they expire.
            ("service-account-key-file", c.ssl("service-account.trust.pem")),
            ("service-account-signing-key-file", c.ssl("service-account.key")),
            ("proxy-client-cert-file", c.ssl("front-proxy-client.pem")),
            ("proxy-client-key-file", c.ssl("front-proxy-client-key.pem")),
            ("requestheader-client-ca-file", c.ssl("front-proxy-ca.pem")),
            ("requestheader-allowed-names", "front-proxy-client"),
            ("requestheader-username-headers", "X-Remote-User"),
            ("requestheader-group-headers", "X-Remote-Group"),
            ("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
            ("audit-policy-file", c.AUDIT_POLICY),
            ("audit-log-path", f"{c.AUDIT_LOG_DIR}/audit.log"),
            ("audit-log-maxage", "7"),
            ("audit-log-maxbackup", "4"),
            ("audit-log-maxsize", "100"),
        ]
    )


def controller_manager(inventory: Inventory) -> list[str]:
    k = inventory.cluster.kubernetes
    conf = c.KUBECONFIGS["kube-controller-manager"]
    return _args(
        [
            ("kubeconfig", conf),
            ("authentication-kubeconfig", conf),
            ("authorization-kubeconfig", conf),
            # Every address: the monitoring layer's Prometheus scrapes /metrics from its
            # server, with a client certificate the delegated authorization checks.
            ("bind-address", "0.0.0.0"),
            ("leader-elect", "true"),
            ("cluster-name", inventory.cluster.name),
            ("allocate-node-cidrs", "true"),
            ("cluster-cidr", k.pod_cidr),
            ("node-cidr-mask-size", str(k.node_cidr_mask_size)),
            ("service-cluster-ip-range", k.service_cidr),
            ("root-ca-file", c.ssl("ca.pem")),
            ("service-account-private-key-file", c.ssl("service-account.key")),
            ("use-service-account-credentials", "true"),
            # certificates.k8s.io requests are signed by the intermediate signer the pki
            # layer mints (the root CA's key stays on the operator's machine).
            ("cluster-signing-cert-file", c.ssl(f"{CLUSTER_SIGNER}.pem")),
            ("cluster-signing-key-file", c.ssl(f"{CLUSTER_SIGNER}-key.pem")),
            ("client-ca-file", c.ssl(CLIENT_CA_BUNDLE)),
            ("requestheader-client-ca-file", c.ssl("front-proxy-ca.pem")),
        ]
    )


def scheduler(inventory: Inventory) -> list[str]:
    conf = c.KUBECONFIGS["kube-scheduler"]
    return _args(
        [
            ("kubeconfig", conf),
            ("authentication-kubeconfig", conf),
            ("authorization-kubeconfig", conf),
            # Every address: the monitoring layer's Prometheus scrapes /metrics from its
            # server, with a client certificate the delegated authorization checks.
            ("bind-address", "0.0.0.0"),
            ("leader-elect", "true"),
        ]
    )


def component(inventory: Inventory, server: Server, name: str) -> list[str]:
    if name == "kube-apiserver":
        return apiserver(inventory, server)
    if name == "kube-controller-manager":
        return controller_manager(inventory)
    if name == "kube-scheduler":
        return scheduler(inventory)
    raise ValueError(f"{name} is not a control-plane component")


def kubelet(inventory: Inventory, server: Server) -> list[str]:
    return _args(
        [
            ("config", c.KUBELET_CONFIG),
            ("kubeconfig", c.KUBECONFIGS["kubelet"]),
            ("hostname-override", server.name),
            ("node-ip", c.node_address(inventory, server)),
        ]
    )
