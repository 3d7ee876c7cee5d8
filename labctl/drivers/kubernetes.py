"""Kubernetes API driver: the lab's API server, from the operator's machine, over mutual TLS.

The kubernetes layer and ``labctl kubernetes status`` need little of the API:
``/readyz``, Nodes, Leases, server-side apply of a handful of objects and a
ServiceAccount token. That is plain HTTPS with JSON, so the standard library's
``http.client`` and ``ssl`` are enough, as for etcd: no client library to ship.

The server's certificate is always verified against the lab CA, for the endpoint's
address (the pki layer puts it on the API certificate, beside its name). Objects are
applied with server-side apply under the field manager ``labctl`` (``force``: labctl
owns the fields it sets); an apply that leaves the object's ``resourceVersion`` as it
was changed nothing.

A client keeps its connection between requests (HTTP/1.1 keep-alive), as the etcd
driver does: a converged run asks the API some 70 times (Calico's objects, each read
and applied), and a new TLS handshake with the client certificate for each was most of
the calico-resources layer's second there. A kept connection the server closed while
it was idle is found before use (or fails as stale) and replaced by a new one; a
refused certificate is still told on a new connection (``tlsrefusal``).
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from labctl.drivers.tlsrefusal import issuer_of, refused_client_certificate, said_before_closing
from labctl.errors import AuthenticationError, DriverError, DriverTimeout

# A kept connection the server closed in the meantime fails with one of these before
# any answer: the request is sent again, once, on a new connection.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError)


class _StaleConnection(Exception):
    """The kept connection was closed by the server before it answered."""


FIELD_MANAGER = "labctl"

# kind -> (plural, namespaced): the kinds the layer applies and the tests create.
KINDS: dict[str, tuple[str, bool]] = {
    "ClusterRole": ("clusterroles", False),
    "ClusterRoleBinding": ("clusterrolebindings", False),
    "ConfigMap": ("configmaps", True),
    "CustomResourceDefinition": ("customresourcedefinitions", False),
    "DaemonSet": ("daemonsets", True),
    "Deployment": ("deployments", True),
    "Namespace": ("namespaces", False),
    "Node": ("nodes", False),
    "Role": ("roles", True),
    "RoleBinding": ("rolebindings", True),
    "Secret": ("secrets", True),
    "Service": ("services", True),
    "ServiceAccount": ("serviceaccounts", True),
}


@dataclass(frozen=True)
class KubeTls:
    ca: Path
    cert: Path
    key: Path


class KubeRequestError(DriverError):
    """The API answered with an error status (its ``Status`` message is the text)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class UnservedKind(DriverError):
    """The API serves no such kind (yet): its CustomResourceDefinition is missing."""


def object_path(doc: dict[str, Any], kinds: dict[str, tuple[str, bool]] | None = None) -> str:
    """The API path of ``doc`` (apiVersion, kind, metadata.name and namespace); ``kinds``
    adds to the built-in table what the API's discovery said (custom resources)."""
    kind = doc["kind"]
    known = KINDS if kinds is None else {**KINDS, **kinds}
    if kind not in known:
        raise DriverError(f"labctl does not know where the API keeps a {kind}")
    plural, namespaced = known[kind]
    api_version = doc["apiVersion"]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    meta = doc["metadata"]
    if namespaced:
        base += f"/namespaces/{quote(meta.get('namespace', 'default'))}"
    return f"{base}/{plural}/{quote(meta['name'])}"


class KubeClient:
    def __init__(self, url: str, tls: KubeTls, timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host = parts.hostname or ""
        self.port = parts.port or 443
        self.timeout = timeout
        self.tls = tls
        context = ssl.create_default_context(cafile=str(tls.ca))
        context.load_cert_chain(str(tls.cert), str(tls.key))
        self._context = context
        # apiVersion -> kind -> (plural, namespaced), from discovery, for custom kinds.
        self._discovered: dict[str, dict[str, tuple[str, bool]]] = {}
        # The connection kept for the next request (one; a thread that finds it taken
        # opens its own, and keeps it after if none is kept by then).
        self._kept: http.client.HTTPSConnection | None = None
        self._kept_lock = threading.Lock()
        self.connections = 0  # connections opened, for tests and benchmarks

    def _connection(self) -> http.client.HTTPSConnection:
        self.connections += 1
        return http.client.HTTPSConnection(
            self.host, self.port, timeout=self.timeout, context=self._context
        )

    def _take(self) -> http.client.HTTPSConnection | None:
        """The kept connection, if there is one the server has not closed."""
        with self._kept_lock:
            kept, self._kept = self._kept, None
        if kept is not None and (kept.sock is None or _closed_by_peer(kept.sock)):
            kept.close()
            return None
        return kept

    def _keep(self, connection: http.client.HTTPSConnection) -> None:
        """Keep ``connection`` for the next request, or close it if one is kept already."""
        with self._kept_lock:
            if self._kept is None:
                self._kept = connection
                return
        connection.close()

    def close(self) -> None:
        """Close the kept connection (a later request opens a new one)."""
        with self._kept_lock:
            kept, self._kept = self._kept, None
        if kept is not None:
            kept.close()

    @staticmethod
    def _exchange(
        connection: http.client.HTTPSConnection,
        method: str,
        path: str,
        data: bytes | None,
        headers: dict[str, str],
    ) -> tuple[int, bytes, bool]:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), response.will_close

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, bytes]:
        """One request; (status, body). Transport failures are DriverError."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        connection = self._take()
        if connection is not None:
            try:
                return self._send(connection, False, method, path, data, headers)
            except _StaleConnection:
                pass  # the server closed the kept connection unread: once more, on a new one
        return self._send(self._connection(), True, method, path, data, headers)

    def _send(
        self,
        connection: http.client.HTTPSConnection,
        fresh: bool,
        method: str,
        path: str,
        data: bytes | None,
        headers: dict[str, str],
    ) -> tuple[int, bytes]:
        """One exchange on ``connection`` (``fresh``: opened for it), kept after if the
        server keeps it; a failure closes it and is told as labctl's error."""
        try:
            status, read, closing = self._exchange(connection, method, path, data, headers)
        except (OSError, http.client.HTTPException) as exc:
            try:
                if not fresh and isinstance(exc, _STALE):
                    raise _StaleConnection from exc
                raise self._failure(connection, fresh, exc) from exc
            finally:
                connection.close()
        if closing:
            connection.close()
        else:
            self._keep(connection)
        return self._answered(method, path, (status, read))

    def _failure(
        self, connection: http.client.HTTPSConnection, fresh: bool, exc: Exception
    ) -> DriverError:
        """What a failed exchange means, read before ``connection`` is closed."""
        if isinstance(exc, TimeoutError):
            return DriverTimeout(f"the Kubernetes API at {self.url} did not answer in time")
        if fresh and isinstance(exc, ssl.SSLCertVerificationError):
            return AuthenticationError(
                f"the Kubernetes API at {self.url} showed a certificate the lab CA did not "
                f"sign for it ({exc.verify_message})"
            )
        if fresh:
            # On a new connection an EOF or reset may hide the server's alert refusing
            # our certificate (TLS 1.3 sends it after the handshake).
            alert = refused_client_certificate(said_before_closing(connection.sock, exc))
            if alert is not None:
                return AuthenticationError(
                    f"the Kubernetes API at {self.url} refused labctl's client certificate "
                    f"{self.tls.cert} (issued by {issuer_of(self.tls.cert)}; {alert}): it is "
                    "not signed by a CA the API server trusts"
                )
        return DriverError(f"the Kubernetes API at {self.url} cannot be reached: {exc}")

    def _answered(self, method: str, path: str, answer: tuple[int, bytes]) -> tuple[int, bytes]:
        if answer[0] == 401:
            # kube-apiserver only asks for a client certificate during the handshake and
            # checks it per request: one its client CA did not sign (or an expired one)
            # comes back as 401. labctl sends no other credential, so that is the cause.
            raise AuthenticationError(
                f"the Kubernetes API at {self.url} did not accept labctl's client certificate "
                f"{self.tls.cert} (issued by {issuer_of(self.tls.cert)}): HTTP 401 Unauthorized "
                f"on {method} {path.split('?')[0]}; its client CA did not sign it, or it expired"
            )
        return answer

    def json(self, method: str, path: str, body: dict[str, Any] | None = None,
             content_type: str = "application/json") -> dict[str, Any]:  # fmt: skip
        status, data = self.request(method, path, body, content_type)
        if status >= 400:
            raise KubeRequestError(_status_message(status, data, method, path), status)
        decoded: dict[str, Any] = json.loads(data)
        return decoded

    def readyz(self) -> tuple[bool, str]:
        """(ready, what /readyz said: "ok", or the checks that fail)."""
        status, data = self.request("GET", "/readyz?verbose")
        text = data.decode(errors="replace")
        if status == 200:
            return True, "ok"
        failing = [line.strip() for line in text.splitlines() if "failed" in line]
        return False, "; ".join(failing) or f"HTTP {status}: {text.strip()[:200]}"

    def get(self, path: str) -> dict[str, Any] | None:
        """The object at ``path``, or None when there is none."""
        status, data = self.request("GET", path)
        if status == 404:
            return None
        if status >= 400:
            raise KubeRequestError(_status_message(status, data, "GET", path), status)
        decoded: dict[str, Any] = json.loads(data)
        return decoded

    def served_kinds(self, api_version: str) -> dict[str, tuple[str, bool]]:
        """What the API serves in ``api_version``: kind -> (plural, namespaced); empty
        when it serves no such group version (a CRD not applied yet)."""
        if api_version not in self._discovered:
            base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            found = self.get(base) or {}
            self._discovered[api_version] = {
                r["kind"]: (r["name"], bool(r.get("namespaced")))
                for r in found.get("resources", [])
                if "/" not in r.get("name", "/")  # not a subresource such as nodes/status
            }
        return self._discovered[api_version]

    def forget_kinds(self) -> None:
        """Discovery is cached; after CRDs are applied, ask again."""
        self._discovered.clear()

    def path_of(self, doc: dict[str, Any]) -> str:
        """``object_path``, asking the API's discovery for kinds labctl has no entry for."""
        if doc["kind"] in KINDS:
            return object_path(doc)
        served = self.served_kinds(doc["apiVersion"])
        if doc["kind"] not in served:
            raise UnservedKind(
                f"the Kubernetes API serves no {doc['kind']} in {doc['apiVersion']} "
                "(its CustomResourceDefinition is not applied)"
            )
        return object_path(doc, served)

    def apply(self, doc: dict[str, Any]) -> bool:
        """Server-side apply ``doc``; True when the object was created or changed."""
        path = self.path_of(doc)
        before = self.get(path)
        after = self.json(
            "PATCH",
            f"{path}?fieldManager={FIELD_MANAGER}&force=true",
            doc,
            "application/apply-patch+yaml",
        )
        if before is None:
            return True
        return bool(before["metadata"]["resourceVersion"] != after["metadata"]["resourceVersion"])

    def list(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.json("GET", path).get("items", [])
        return items

    def service_account_token(self, namespace: str, name: str, seconds: int = 600) -> str:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds},
        }
        path = f"/api/v1/namespaces/{quote(namespace)}/serviceaccounts/{quote(name)}/token"
        token: str = self.json("POST", path, body)["status"]["token"]
        return token


def _status_message(status: int, data: bytes, method: str, path: str) -> str:
    try:
        message = json.loads(data).get("message", "")
    except ValueError:
        message = data.decode(errors="replace").strip()[:200]
    return f"the Kubernetes API refused {method} {path.split('?')[0]}: HTTP {status} {message}"


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether an idle kept connection has something to read: the server closed it (or
    sent something unasked; either way a new connection is safer)."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)
