"""The Kubernetes API driver's client certificate against the real servers that judge it.

A real kube-apiserver on loopback (on a one-member etcd, with the lab's
authentication flags) asks for a certificate without requiring one and answers an
untrusted one with 401 on every request, /readyz included. A TLS front that requires
one refuses it in the handshake, which TLS 1.3 may deliver late: two such stacks
stand in, each requiring a certificate signed by the lab CA: ``openssl s_server``
with the lab's API certificate (it closes with a FIN, so our read always meets its
alert), and Go's, as the etcd member serves it (it closes with a reset before it
has read our whole flight, so our write often fails first). labctl's own admin
certificate gets in everywhere; one from another lab's CA must be told as refused,
an AuthenticationError, every time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.drivers.kubernetes import KubeClient, KubeTls
from labctl.errors import AuthenticationError
from labctl.inventory import require_inventory
from labctl.kubernetes.api import KubeSession
from labctl.kubernetes.binaries import bin_dir
from labctl.pki.builtin_backend import BuiltinBackend
from labctl.pki.store import PkiStore
from tests.conftest import REFERENCE
from tests.peers.etcd import ADDRS, EtcdCluster, mint_loopback_pki, running_etcd_cluster
from tests.peers.kubeapi import running_kube_apiserver
from tests.peers.tlsserver import TlsServer, refusal_before_request, running_tls_server

pytestmark = pytest.mark.integration
VERSION = "v" + next(
    line.split()[1] for line in REFERENCE.read_text().splitlines() if "version: 1." in line
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiStore:
    return mint_loopback_pki(tmp_path_factory.mktemp("pki") / "ssl", BuiltinBackend())


@pytest.fixture(scope="module")
def rogue(tmp_path_factory: pytest.TempPathFactory) -> PkiStore:
    return mint_loopback_pki(tmp_path_factory.mktemp("rogue") / "ssl", BuiltinBackend())


@pytest.fixture(scope="module")
def server(pki: PkiStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    # The API certificate carries the API address, ADDRS[0], as the lab's does.
    log = tmp_path_factory.mktemp("s_server") / "s_server.log"
    cert, key, ca = pki.path("apiserver.pem"), pki.path("apiserver-key.pem"), pki.path("ca.pem")
    with running_tls_server(ADDRS[0], cert, key, ca, log) as s:
        yield s


def test_labctls_own_certificate_gets_in(pki: PkiStore, server: TlsServer) -> None:
    tls = KubeTls(pki.path("ca.pem"), pki.path("admin.pem"), pki.path("admin-key.pem"))
    # s_server -www answers any GET with 200 and its status page.
    assert KubeClient(server.url, tls).readyz() == (True, "ok")


def foreign(pki: PkiStore, rogue: PkiStore) -> KubeTls:
    return KubeTls(pki.path("ca.pem"), rogue.path("admin.pem"), rogue.path("admin-key.pem"))


def refused(pki: PkiStore, rogue: PkiStore, server: TlsServer) -> str:
    tls = foreign(pki, rogue)
    return (
        f"the Kubernetes API at {server.url} refused labctl's client certificate {tls.cert} "
        "(issued by CN="
    )


def test_a_client_certificate_from_another_ca_is_refused_every_time(
    pki: PkiStore, rogue: PkiStore, server: TlsServer
) -> None:
    # Whether the alert or the reset reaches our request first is a race: many tries.
    client = KubeClient(server.url, foreign(pki, rogue))
    for _ in range(30):
        with pytest.raises(AuthenticationError) as caught:
            client.readyz()
        assert str(caught.value).startswith(refused(pki, rogue, server))
        assert "alert" in str(caught.value)


def test_a_refusal_that_cuts_the_request_is_still_a_refused_certificate(
    pki: PkiStore, rogue: PkiStore, server: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The request goes out only once the server has closed the connection after its alert.
    refusal_before_request(monkeypatch)
    client = KubeClient(server.url, foreign(pki, rogue))
    for _ in range(5):
        with pytest.raises(AuthenticationError) as caught:
            client.get("/api/v1/nodes")
        assert str(caught.value).startswith(refused(pki, rogue, server))


def test_without_a_verifiable_server_certificate_labctl_refuses(
    pki: PkiStore, rogue: PkiStore, server: TlsServer, tmp_path: Path
) -> None:
    # The other direction stays what it was: labctl checks the server against its CA.
    tls = KubeTls(rogue.path("ca.pem"), pki.path("admin.pem"), pki.path("admin-key.pem"))
    with pytest.raises(AuthenticationError, match="showed a certificate the lab CA did not sign"):
        KubeClient(server.url, tls).readyz()


@pytest.fixture(scope="module")
def etcd(pki: PkiStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with running_etcd_cluster(tmp_path_factory.mktemp("etcd"), pki, size=1) as c:
        yield c


@pytest.fixture(scope="module")
def go_server(etcd: EtcdCluster) -> TlsServer:
    """Go's TLS server with client certificates required: the etcd member's client port."""
    m = etcd.members[0]
    return TlsServer(m.addr, m.client)


def test_go_lets_labctls_own_certificate_in(pki: PkiStore, go_server: TlsServer) -> None:
    tls = KubeTls(pki.path("ca.pem"), pki.path("admin.pem"), pki.path("admin-key.pem"))
    # etcd has no /readyz: the 404 is an answer, so the handshake and the request went through.
    ready, why = KubeClient(go_server.url, tls).readyz()
    assert not ready and why.startswith("HTTP 404")


def test_go_refusing_the_certificate_is_told_every_time(
    pki: PkiStore, rogue: PkiStore, go_server: TlsServer
) -> None:
    client = KubeClient(go_server.url, foreign(pki, rogue))
    for _ in range(30):
        with pytest.raises(AuthenticationError) as caught:
            client.readyz()
        assert str(caught.value).startswith(refused(pki, rogue, go_server))
        assert "sslv3 alert bad certificate" in str(caught.value)


def test_go_refusal_that_cuts_the_request_is_still_a_refused_certificate(
    pki: PkiStore, rogue: PkiStore, go_server: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusal_before_request(monkeypatch)
    client = KubeClient(go_server.url, foreign(pki, rogue))
    for _ in range(5):
        with pytest.raises(AuthenticationError) as caught:
            client.get("/api/v1/nodes")
        assert str(caught.value).startswith(refused(pki, rogue, go_server))


def test_waiting_for_the_api_ends_at_once_when_it_refuses_the_certificate(
    pki: PkiStore, rogue: PkiStore, go_server: TlsServer, tmp_path: Path
) -> None:
    # The kubernetes layer waits up to ready_timeout (300 s) for /readyz and for the
    # Nodes: a refused certificate will not be trusted by waiting, so it ends the wait.
    session = KubeSession(require_inventory(REFERENCE), tmp_path)
    session._client = KubeClient(go_server.url, foreign(pki, rogue))
    for wait in (session.wait_ready, session.wait_nodes, session.wait_nodes_ready):
        start = time.monotonic()
        with pytest.raises(AuthenticationError) as caught:
            wait(10)
        assert str(caught.value).startswith(refused(pki, rogue, go_server))
        assert time.monotonic() - start < 3


@pytest.fixture(scope="module")
def apiserver(
    pki: PkiStore, etcd: EtcdCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsServer]:
    log = tmp_path_factory.mktemp("kube-apiserver") / "kube-apiserver.log"
    binary = bin_dir(VERSION) / "kube-apiserver"
    with running_kube_apiserver(binary, ADDRS[0], pki, etcd, log) as s:
        yield s


def test_the_api_server_accepts_labctls_own_certificate(
    pki: PkiStore, apiserver: TlsServer
) -> None:
    tls = KubeTls(pki.path("ca.pem"), pki.path("admin.pem"), pki.path("admin-key.pem"))
    client = KubeClient(apiserver.url, tls)
    assert client.readyz() == (True, "ok")
    assert client.get("/api/v1/namespaces/default") is not None


def test_the_api_server_refusing_a_certificate_from_another_ca_is_an_authentication_error(
    pki: PkiStore, rogue: PkiStore, apiserver: TlsServer, tmp_path: Path
) -> None:
    # The handshake succeeds (the API server asks for a certificate, requires none) and
    # each request is answered 401, even /readyz, which anonymous clients may read: a
    # certificate that does not verify is refused, not taken for anonymous.
    client = KubeClient(apiserver.url, foreign(pki, rogue))
    did_not = (
        f"the Kubernetes API at {apiserver.url} did not accept labctl's client certificate "
        f"{foreign(pki, rogue).cert} (issued by CN="
    )
    for call in (
        client.readyz,
        lambda: client.get("/api/v1/nodes"),
        lambda: client.list("/api/v1/namespaces"),
    ):
        with pytest.raises(AuthenticationError) as caught:
            call()
        assert str(caught.value).startswith(did_not)
        assert "HTTP 401 Unauthorized" in str(caught.value)
    # And the kubernetes layer's wait for the API ends at once instead of after 300 s.
    session = KubeSession(require_inventory(REFERENCE), tmp_path)
    session._client = client
    start = time.monotonic()
    with pytest.raises(AuthenticationError):
        session.wait_ready(10)
    assert time.monotonic() - start < 3


def test_plan_reads_the_api_servers_own_version_and_the_skew_rules_judge_it(
    pki: PkiStore, apiserver: TlsServer, tmp_path: Path
) -> None:
    """`labctl plan` and bootstrap's preflight read what the API server says it runs
    (issue 24): a skipped minor from it is refused, the next minor is not."""
    from labctl.labdiff.running import Observed, kubernetes_running
    from labctl.labdiff.skew import kubernetes_problems

    tls = KubeTls(pki.path("ca.pem"), pki.path("admin.pem"), pki.path("admin-key.pem"))
    session = KubeSession(require_inventory(REFERENCE), tmp_path)
    session._client = KubeClient(apiserver.url, tls)
    seen = Observed()
    running = kubernetes_running(session, seen)
    assert running.api_servers == {apiserver.url: VERSION}
    assert running.kubelets == {} and seen.live["kubernetes"] == frozenset()  # no Node yet
    major, minor, _ = VERSION.removeprefix("v").split(".")
    (skip,) = kubernetes_problems(f"{major}.{int(minor) + 2}.0", running)
    assert skip.rule == "minor-skip" and skip.running == VERSION.removeprefix("v")
    assert kubernetes_problems(f"{major}.{int(minor) + 1}.0", running) == []
