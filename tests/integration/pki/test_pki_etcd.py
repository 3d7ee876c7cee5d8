"""The real proof: a 3-member TLS etcd cluster on loopback running labctl's certs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.pki.backend import Backend
from labctl.pki.builtin_backend import BuiltinBackend
from tests.integration.pki.conftest import require
from tests.peers.etcd import EtcdCluster, mint_loopback_pki, running_etcd_cluster

pytestmark = pytest.mark.integration


@pytest.fixture
def etcd_cluster(backend: Backend, tmp_path: Path) -> Iterator[EtcdCluster]:
    require("etcd", "etcd-server")
    require("etcdctl", "etcd-client")
    store = mint_loopback_pki(tmp_path / "ssl", backend)
    # Starting waits until etcdctl calls every member healthy: health needs a quorum,
    # so that alone proves the members trust each other's peer certificates.
    with running_etcd_cluster(tmp_path / "etcd", store) as cluster:
        yield cluster


def test_three_member_tls_cluster(etcd_cluster: EtcdCluster, tmp_path: Path) -> None:
    cluster = etcd_cluster
    for m in cluster.members:
        r = cluster.etcdctl(m, "endpoint", "health")
        assert r.returncode == 0 and "is healthy" in r.stdout + r.stderr, r.stderr

    # The member list proves all three joined over mutually authenticated peer TLS.
    r = cluster.etcdctl(cluster.members[0], "member", "list")
    assert r.returncode == 0, r.stderr
    assert sum(m.peer_url in r.stdout for m in cluster.members) == 3

    # A client cert from another CA, same CN and usages, is refused by every member.
    rogue = mint_loopback_pki(tmp_path / "rogue", BuiltinBackend())
    for m in cluster.members:
        bad = cluster.etcdctl(
            m,
            "endpoint",
            "health",
            cert=rogue.path("etcd-client-operator.pem"),
            key=rogue.path("etcd-client-operator-key.pem"),
        )
        assert bad.returncode != 0, f"{m.name} accepted a foreign client cert"
        assert "is healthy" not in bad.stdout
