"""The Kubernetes API driver keeps its connection between requests (issue 28 item 2).

A converged bootstrap asks the API some 70 times; each new connection is a TLS
handshake with labctl's client certificate. Against a real HTTPS server on loopback
(Python's HTTP/1.1 server behind the lab PKI's API certificate, which asks for and
verifies the client's), counted by the connections it accepts: many requests go over
one connection; one the server closed while it was idle, or after an answer it said
was its last, is replaced and the request still answered; threads asking at once
each get their answer. (The refusals of a foreign certificate, on new connections,
are tests/integration/test_kube_driver.py's.)
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from labctl.drivers.kubernetes import KubeClient, KubeTls
from labctl.pki.builtin_backend import BuiltinBackend
from labctl.pki.store import PkiStore
from tests.peers.etcd import ADDRS, mint_loopback_pki


@dataclass
class Api:
    url: str
    tls: KubeTls
    accepted: list[int] = field(default_factory=list)  # one entry per connection
    sockets: list[ssl.SSLSocket] = field(default_factory=list)
    close_after: bool = False  # answer with "Connection: close"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiStore:
    return mint_loopback_pki(tmp_path_factory.mktemp("pki") / "ssl", BuiltinBackend())


@pytest.fixture
def api(pki: PkiStore) -> Iterator[Api]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.path("apiserver.pem"), pki.path("apiserver-key.pem"))
    context.load_verify_locations(pki.path("ca.pem"))
    context.verify_mode = ssl.CERT_REQUIRED
    tls = KubeTls(pki.path("ca.pem"), pki.path("admin.pem"), pki.path("admin-key.pem"))
    state = Api("", tls)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            state.accepted.append(1)
            assert isinstance(self.request, ssl.SSLSocket)
            state.sockets.append(self.request)

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            data = json.dumps({"path": self.path, "got": len(body)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if state.close_after:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)

        do_GET = _answer
        do_PATCH = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((ADDRS[0], 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state.url = f"https://{ADDRS[0]}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        for sock in state.sockets:
            sock.close()


def test_many_requests_go_over_one_connection(api: Api) -> None:
    client = KubeClient(api.url, api.tls)
    for i in range(12):
        assert client.json("GET", f"/api/v1/nodes/n{i}")["path"] == f"/api/v1/nodes/n{i}"
    assert client.json("PATCH", "/api/v1/nodes/n0", {"a": 1})["got"] > 0
    assert len(api.accepted) == 1  # on main: 13, a handshake per request
    assert client.connections == 1
    client.close()


def test_a_connection_the_server_closed_is_replaced(api: Api) -> None:
    client = KubeClient(api.url, api.tls)
    assert client.get("/api/v1/nodes/a") is not None
    # The server drops the idle connection (a restart, an idle timeout).
    for sock in api.sockets:
        sock.shutdown(socket.SHUT_RDWR)
    time.sleep(0.1)
    assert client.get("/api/v1/nodes/b") == {"path": "/api/v1/nodes/b", "got": 0}
    assert len(api.accepted) == 2
    # An answer the server says is its last closes the connection after it.
    api.close_after = True
    for i in range(3):
        assert client.get(f"/api/v1/nodes/c{i}") is not None
    assert len(api.accepted) == 2 + 2  # the kept one answered c0 and closed; c1, c2 new
    client.close()


def test_threads_asking_at_once_each_get_their_answer(api: Api) -> None:
    client = KubeClient(api.url, api.tls)
    paths = [f"/api/v1/nodes/t{i}" for i in range(40)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda p: client.json("GET", p)["path"], paths))
    assert answers == paths
    assert 1 <= len(api.accepted) <= 4 + 40 // 2  # connections reused, never one each
    client.close()


def test_a_closed_client_opens_a_new_connection(api: Api) -> None:
    client = KubeClient(api.url, api.tls)
    client.get("/api/v1/nodes/x")
    client.close()
    client.get("/api/v1/nodes/y")
    assert len(api.accepted) == 2
    client.close()
