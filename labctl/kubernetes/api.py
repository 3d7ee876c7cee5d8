"""The lab's Kubernetes API, reached with the operator's admin certificate (``KubeSession``).

The endpoint is ``cluster.kubernetes.api_endpoint``; the certificate is the
``admin`` client certificate from the PKI store (its CN is the operator, in
``system:masters``). Readiness, Nodes, the control-plane components' leases,
applying the addons and how many of their pods are ready, and the operator's
kubeconfig are decided here once, for the layer's local work and for
``labctl kubernetes`` / ``labctl kubeconfig`` alike.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.drivers.kubernetes import KubeClient, KubeTls, UnservedKind
from labctl.errors import AuthenticationError, DriverError, LabctlError
from labctl.inventory.model import Inventory
from labctl.pki.lab_pki import PkiSession
from labctl.render.kubernetes import common
from labctl.render.kubernetes.kubeconfig import embedded_kubeconfig

# Client certificates in the store a kubeconfig can be written for (--user).
USERS = ("admin", "kube-controller-manager", "kube-scheduler", "kube-proxy")
LEASES = ("kube-controller-manager", "kube-scheduler")


@dataclass(frozen=True)
class NodeState:
    name: str
    ready: bool
    reason: str
    kubelet_version: str
    address: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ready": self.ready,
            "reason": self.reason,
            "kubelet_version": self.kubelet_version,
            "address": self.address,
        }


# The addons that run pods; each is shown by its ready count (`kubernetes status`).
WORKLOADS = ("DaemonSet", "Deployment")


@dataclass(frozen=True)
class AddonState:
    kind: str
    name: str
    namespace: str
    desired: int | None  # None: the object is not in the API
    ready: int

    @property
    def healthy(self) -> bool:
        return self.desired is not None and self.ready >= self.desired

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "desired": self.desired,
            "ready": self.ready,
            "healthy": self.healthy,
        }


def addon_state(doc: dict[str, Any], live: dict[str, Any] | None) -> AddonState:
    """How many of an addon's pods should run and how many are ready, from its live object
    (a DaemonSet's pods are one per eligible node; a Deployment's its replicas)."""
    meta = doc["metadata"]
    kind, name, namespace = doc["kind"], meta["name"], meta.get("namespace", "")
    if live is None:
        return AddonState(kind, name, namespace, None, 0)
    status = live.get("status", {})
    if kind == "DaemonSet":
        desired, ready = status.get("desiredNumberScheduled", 0), status.get("numberReady", 0)
    else:
        desired, ready = live.get("spec", {}).get("replicas", 1), status.get("readyReplicas", 0)
    return AddonState(kind, name, namespace, int(desired), int(ready))


def node_state(node: dict[str, Any]) -> NodeState:
    status = node.get("status", {})
    conditions = status.get("conditions", [])
    ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
    address = next(
        (a["address"] for a in status.get("addresses", []) if a.get("type") == "InternalIP"), ""
    )
    return NodeState(
        node["metadata"]["name"],
        ready.get("status") == "True",
        ready.get("message", "") if ready.get("status") != "True" else "",
        status.get("nodeInfo", {}).get("kubeletVersion", ""),
        address,
    )


def not_ready_reasons(inventory: Inventory, nodes: list[NodeState]) -> list[str]:
    """``name (why)`` for each of the inventory's nodes that is not a Ready Node."""
    seen = {n.name: n for n in nodes}
    out = []
    for server in common.nodes(inventory):
        node = seen.get(server.name)
        if node is None:
            out.append(f"{server.name} (not registered)")
        elif not node.ready:
            out.append(f"{server.name} ({node.reason or 'Ready is not True'})")
    return out


def is_subset(want: Any, have: Any) -> bool:
    """Whether every field ``want`` sets is so in ``have`` (what the server adds is ignored)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(
            k in have and is_subset(v, have[k]) for k, v in want.items()
        )
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(want) == len(have)
            and all(is_subset(w, h) for w, h in zip(want, have, strict=True))
        )
    return bool(want == have)


class KubeSession:
    def __init__(self, inventory: Inventory, base_dir: Path, timeout: float = 5.0) -> None:
        self.inventory = inventory
        self.base_dir = base_dir
        self.timeout = timeout
        self._client: KubeClient | None = None

    def _pki(self) -> PkiSession:
        return PkiSession(self.inventory, self.base_dir)

    def tls(self, user: str = "admin") -> KubeTls:
        return KubeTls(*self._pki().store.client_files(user, f"{user} client"))

    def client(self) -> KubeClient:
        if self._client is None:
            self._client = KubeClient(common.api_url(self.inventory), self.tls(), self.timeout)
        return self._client

    def readyz(self) -> tuple[bool, str]:
        """(ready, why not), with an unreachable API (or no admin certificate yet) as a
        reason rather than an error."""
        try:
            return self.client().readyz()
        except LabctlError as exc:
            return False, str(exc)

    def wait_ready(self, timeout: float) -> float:
        """Seconds until /readyz said ok; LabctlError with the last reason after ``timeout``.

        A refused client certificate is raised at once: waiting does not make it trusted.
        """
        start = time.monotonic()
        while True:
            try:
                ready, why = self.client().readyz()
            except AuthenticationError:
                raise
            except LabctlError as exc:
                ready, why = False, str(exc)
            if ready:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise LabctlError(
                    f"the Kubernetes API at {common.api_url(self.inventory)} is not ready after "
                    f"{timeout:g} s: {why}"
                )
            time.sleep(1.0)

    def nodes(self) -> list[NodeState]:
        return [node_state(n) for n in self.client().list("/api/v1/nodes")]

    def missing_nodes(self) -> list[str]:
        registered = {n.name for n in self.nodes()}
        return [s.name for s in common.nodes(self.inventory) if s.name not in registered]

    def wait_nodes(self, timeout: float) -> float:
        return self._wait_servers(
            self.missing_nodes, "not registered", "not every server is a Node", timeout
        )

    def not_ready_nodes(self) -> list[str]:
        """The servers that are not Ready Nodes (unregistered ones included)."""
        ready = {n.name for n in self.nodes() if n.ready}
        return [s.name for s in common.nodes(self.inventory) if s.name not in ready]

    def not_ready_reasons(self) -> list[str]:
        """Each server that is not a Ready Node, with its kubelet's words for why."""
        return not_ready_reasons(self.inventory, self.nodes())

    def wait_nodes_ready(self, timeout: float) -> float:
        return self._wait_servers(
            self.not_ready_reasons, "not Ready", "not every Node is Ready", timeout
        )

    def _wait_servers(
        self, waiting_for: Callable[[], list[str]], state: str, failure: str, timeout: float
    ) -> float:
        """Seconds until ``waiting_for`` names no server; LabctlError after ``timeout``
        (a refused client certificate at once)."""
        start = time.monotonic()
        while True:
            try:
                waiting = waiting_for()
            except AuthenticationError:
                raise
            except DriverError as exc:
                waiting, why = ["?"], str(exc)
            else:
                why = f"{state}: {', '.join(waiting)}"
            if not waiting:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise LabctlError(f"{failure} after {timeout:g} s ({why})")
            time.sleep(1.0)

    def apply(self, docs: list[dict[str, Any]]) -> list[str]:
        """Server-side apply each; the paths of those created or changed."""
        client = self.client()
        return [client.path_of(doc) for doc in docs if client.apply(doc)]

    def differing(self, docs: list[dict[str, Any]]) -> list[str]:
        """What applying ``docs`` would change: missing objects and objects that differ."""
        client = self.client()
        found = []
        for doc in docs:
            try:
                live = client.get(client.path_of(doc))
            except UnservedKind:
                live = None  # a kind the API does not serve yet: its object is missing
            if live is None:
                found.append(f"{doc['kind']} {doc['metadata']['name']} is missing")
            elif not is_subset(doc, live):
                found.append(f"{doc['kind']} {doc['metadata']['name']} differs")
        return found

    def leases(self) -> list[dict[str, Any]]:
        """The control-plane components' leader leases: who holds each, how fresh."""
        now = time.time()
        found = []
        for name in LEASES:
            path = f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}"
            lease = self.client().get(path)
            spec = (lease or {}).get("spec", {})
            renewed = spec.get("renewTime")
            age = None
            if renewed:
                stamp = calendar.timegm(time.strptime(renewed[:19], "%Y-%m-%dT%H:%M:%S"))
                age = round(now - stamp, 1)
            healthy = age is not None and age < spec.get("leaseDurationSeconds", 15) * 2
            found.append(
                {
                    "component": name,
                    "holder": spec.get("holderIdentity"),
                    "renewed_seconds_ago": age,
                    "healthy": healthy,
                }
            )
        return found

    def addons(self) -> list[AddonState]:
        """Every addon that runs pods (kube-proxy, CoreDNS), as the API has it now."""
        from labctl.render.kubernetes.addons import all_addons

        client = self.client()
        return [
            addon_state(doc, client.get(client.path_of(doc)))
            for doc in all_addons(self.inventory)
            if doc["kind"] in WORKLOADS
        ]

    def status(self) -> dict[str, Any]:
        ready, why = self.readyz()
        result: dict[str, Any] = {
            "api": {"url": common.api_url(self.inventory), "ready": ready, "reason": why},
            "components": [],
            "nodes": [],
            "missing_nodes": [],
            "addons": [],
        }
        if ready:
            result["components"] = self.leases()
            result["addons"] = [a.as_dict() for a in self.addons()]
            nodes = self.nodes()
            result["nodes"] = [n.as_dict() for n in nodes]
            names = {n.name for n in nodes}
            result["missing_nodes"] = [
                s.name for s in common.nodes(self.inventory) if s.name not in names
            ]
        return result

    def kubeconfig(self, user: str = "admin") -> dict[str, Any]:
        """A self-contained kubeconfig for ``user`` (a client certificate in the store)."""
        if user not in USERS:
            raise LabctlError(f"no kubeconfig for {user!r}; users are: {', '.join(USERS)}")
        tls = self.tls(user)
        name = self._pki().settings.operator if user == "admin" else f"system:{user}"
        return embedded_kubeconfig(
            self.inventory, name, tls.ca.read_bytes(), tls.cert.read_bytes(), tls.key.read_bytes()
        )
