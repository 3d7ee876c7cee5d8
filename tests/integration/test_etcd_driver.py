"""The etcd driver against a real 3-member etcd 3.4 cluster, mutual TLS on loopback.

etcd's own client (etcdctl) is the reference: what labctl writes, etcdctl reads;
the snapshot labctl takes, etcdctl inspects and restores. Tests that kill, stop or
change members get a cluster of their own; the rest share one per module.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from labctl.drivers import etcd as etcd_driver
from labctl.drivers.etcd import (
    Alarm,
    EtcdClient,
    EtcdEndpoint,
    EtcdRequestError,
    EtcdTls,
    LearnerNotReadyError,
)
from labctl.errors import AuthenticationError, DriverError
from labctl.etcd.cluster import EtcdSession
from labctl.inventory import require_inventory
from labctl.pki.builtin_backend import BuiltinBackend
from labctl.pki.store import PkiStore
from tests.conftest import REFERENCE
from tests.peers.etcd import EtcdCluster, EtcdMember, mint_loopback_pki, running_etcd_cluster
from tests.peers.tlsserver import refusal_before_request

pytestmark = pytest.mark.integration
T = TypeVar("T")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiStore:
    return mint_loopback_pki(tmp_path_factory.mktemp("pki") / "ssl", BuiltinBackend())


@pytest.fixture(scope="module")
def cluster(pki: PkiStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with running_etcd_cluster(tmp_path_factory.mktemp("etcd"), pki) as c:
        yield c


@pytest.fixture
def own_cluster(pki: PkiStore, tmp_path: Path) -> Iterator[EtcdCluster]:
    with running_etcd_cluster(tmp_path / "etcd", pki) as c:
        yield c


def endpoint(m: EtcdMember) -> EtcdEndpoint:
    return EtcdEndpoint(m.name, m.client_url)


def tls_of(c: EtcdCluster) -> EtcdTls:
    return EtcdTls(c.ca, c.client_cert, c.client_key)


@pytest.fixture
def client(cluster: EtcdCluster) -> Iterator[EtcdClient]:
    with EtcdClient([endpoint(m) for m in cluster.members], tls_of(cluster)) as c:
        yield c


def until(what: str, probe: Callable[[], T | None], within: float) -> T:
    """``probe()`` until it returns something, or fail saying what never happened."""
    deadline = time.monotonic() + within
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within:g} s")
        time.sleep(0.2)


def settled(what: str, call: Callable[[], T], within: float = 30) -> T:
    """``call()``, again while etcd answers "unhealthy cluster".

    With its default strict reconfiguration check etcd 3.4 refuses membership
    changes until every voting member has been connected for 5 s, so right after
    a (re)start it says "etcdserver: unhealthy cluster" (UNAVAILABLE) for a while.
    """

    def attempt() -> tuple[T] | None:
        try:
            return (call(),)
        except EtcdRequestError as exc:
            if exc.code == 14 and "unhealthy cluster" in exc.reason:
                return None
            raise

    return until(what, attempt, within)[0]


def etcdctl_json(c: EtcdCluster, m: EtcdMember, *args: str) -> Any:
    done = c.etcdctl(m, *args, "-w", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_member_is_healthy_and_exactly_one_leads(
    cluster: EtcdCluster, client: EtcdClient
) -> None:
    for m in cluster.members:
        assert client.healthy(endpoint(m)) is None
    statuses = [client.status(endpoint(m)) for m in cluster.members]
    assert [s.name for s in statuses] == ["m0", "m1", "m2"]
    assert sum(s.is_leader for s in statuses) == 1
    assert len({s.leader_id for s in statuses}) == 1
    assert len({s.member_id for s in statuses}) == 3
    for s in statuses:
        assert s.raft_index > 0 and s.raft_term > 0 and s.db_size > 0, s
        assert re.fullmatch(r"3\.4\.\d+", s.version), s.version
        assert not s.is_learner and s.errors == ()
    # etcdctl sees the same member ids and the same leader.
    reference = etcdctl_json(cluster, cluster.members[0], "endpoint", "status")
    seen = reference[0]["Status"]
    assert seen["header"]["member_id"] == statuses[0].member_id
    assert seen["leader"] == statuses[0].leader_id


def test_members_are_the_three_started(cluster: EtcdCluster, client: EtcdClient) -> None:
    members = sorted(client.members(), key=lambda m: m.name)
    assert [m.name for m in members] == ["m0", "m1", "m2"]
    for got, want in zip(members, cluster.members, strict=True):
        assert got.peer_urls == (want.peer_url,)
        assert got.client_urls == (want.client_url,)
        assert not got.is_learner
    reference = etcdctl_json(cluster, cluster.members[1], "member", "list")
    ids = {m["ID"] for m in reference["members"]}
    assert {m.id for m in members} == ids


def test_put_get_delete_round_trip_as_etcdctl_sees_it(
    cluster: EtcdCluster, client: EtcdClient
) -> None:
    key, value = f"/labctl/test/{os.getpid()}/bytes", bytes(range(256)) * 3
    assert client.get(key) is None
    client.put(key, value)
    assert client.get(key) == value
    seen = etcdctl_json(cluster, cluster.members[2], "get", key)
    assert [kv["value"] for kv in seen["kvs"]] == [base64.b64encode(value).decode()]
    client.put(key, b"")  # etcd leaves an empty value out of its answer: still a value
    assert client.get(key) == b""
    assert client.delete(key) == 1
    assert client.delete(key) == 0
    assert client.get(key) is None
    assert cluster.etcdctl(cluster.members[0], "get", key).stdout == ""


def test_no_alarms(client: EtcdClient) -> None:
    assert client.alarms() == []


def test_snapshot_is_atomic_checked_and_etcdctl_accepts_it(
    cluster: EtcdCluster, client: EtcdClient, tmp_path: Path
) -> None:
    m0 = cluster.members[0]
    out = tmp_path / "backup" / "etcd.db"
    out.parent.mkdir()
    out.write_bytes(b"the previous snapshot")
    earlier = etcdctl_json(cluster, m0, "snapshot", "status", str(client.snapshot(out).path))
    written = 200
    for i in range(written):
        client.put(f"/labctl/snap/{i:04d}", os.urandom(1024))
    revision = client.status(endpoint(m0)).revision

    info = client.snapshot(out)

    assert info.path == out and info.member == "m0"
    data = out.read_bytes()
    assert info.size == len(data) and info.sha256 == hashlib.sha256(data).hexdigest()
    # etcd's own trailer: the SHA-256 of the database before it.
    assert hashlib.sha256(data[:-32]).digest() == data[-32:]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(p.name for p in out.parent.iterdir()) == ["etcd.db"]
    reference = etcdctl_json(cluster, m0, "snapshot", "status", str(out))
    assert reference["revision"] == revision
    # etcdctl counts every key of every bucket (members, meta, ...), so compare the
    # two snapshots: each put is one revision and one more stored version.
    assert reference["revision"] - earlier["revision"] == written
    assert reference["totalKey"] - earlier["totalKey"] == written
    assert reference["totalSize"] == len(data) - 32
    # Restoring checks the trailer (etcdctl refuses a snapshot whose hash is wrong).
    restored = cluster.etcdctl(
        m0,
        "snapshot",
        "restore",
        str(out),
        "--data-dir",
        str(tmp_path / "restored"),
        "--name",
        "m0",
        "--initial-cluster",
        f"m0={m0.peer_url}",
        "--initial-advertise-peer-urls",
        m0.peer_url,
    )
    assert restored.returncode == 0, restored.stderr


def test_failed_snapshot_leaves_the_previous_one(cluster: EtcdCluster, tmp_path: Path) -> None:
    out = tmp_path / "etcd.db"
    out.write_bytes(b"the previous snapshot")
    nobody = EtcdEndpoint("gone", f"https://{cluster.members[0].addr}:1")
    with EtcdClient([nobody], tls_of(cluster), timeout=2) as lonely, pytest.raises(DriverError):
        lonely.snapshot(out)
    assert out.read_bytes() == b"the previous snapshot"
    assert [p.name for p in tmp_path.iterdir()] == ["etcd.db"]


def test_a_client_certificate_from_another_ca_is_refused(
    cluster: EtcdCluster, tmp_path: Path
) -> None:
    rogue = mint_loopback_pki(tmp_path / "rogue", BuiltinBackend())
    foreign = EtcdTls(
        cluster.ca,
        rogue.path("etcd-client-operator.pem"),
        rogue.path("etcd-client-operator-key.pem"),
    )
    eps = [endpoint(m) for m in cluster.members]
    with EtcdClient(eps, foreign) as c:
        with pytest.raises(AuthenticationError) as caught:
            c.members()
        for m in cluster.members:
            assert f"{m.name} ({m.client_url}) refused labctl's client certificate" in str(
                caught.value
            )
        with pytest.raises(AuthenticationError, match=r"m1 \(https://.*\) refused labctl's"):
            c.status(eps[1])
        # Refused is not "unhealthy": the member answered, and waiting will not change it.
        with pytest.raises(AuthenticationError, match=r"m0 \(https://.*\) refused labctl's"):
            c.healthy(eps[0])

    # A member whose certificate does not chain to the CA labctl trusts: labctl refuses.
    wrong_ca = EtcdTls(rogue.path("ca.pem"), cluster.client_cert, cluster.client_key)
    with EtcdClient(eps, wrong_ca) as c:
        with pytest.raises(AuthenticationError, match="refused the server certificate of m0"):
            c.status(eps[0])
        with pytest.raises(AuthenticationError, match="refused the server certificate of m1"):
            c.healthy(eps[1])
        with pytest.raises(AuthenticationError):
            c.put("/labctl/never", b"x")
    assert cluster.etcdctl(cluster.members[0], "get", "/labctl/never").stdout == ""


def test_a_refused_certificate_is_told_when_the_refusal_cuts_the_request(
    cluster: EtcdCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under TLS 1.3 a member looks at our certificate after our side of the handshake
    # is done, then sends its alert and closes with a reset. When all that arrives
    # before we write the request (made certain here), the write fails on the reset
    # ("EOF occurred in violation of protocol"), with the alert waiting behind it.
    refusal_before_request(monkeypatch)
    rogue = mint_loopback_pki(tmp_path / "rogue", BuiltinBackend())
    foreign = EtcdTls(
        cluster.ca,
        rogue.path("etcd-client-operator.pem"),
        rogue.path("etcd-client-operator-key.pem"),
    )
    eps = [endpoint(m) for m in cluster.members]
    refused = f"refused labctl's client certificate {foreign.cert} (issued by CN="
    with EtcdClient(eps, foreign) as c:
        with pytest.raises(AuthenticationError) as caught:
            c.members()
        said = str(caught.value)
        assert said.startswith("no etcd member could list the members: ")
        for m in cluster.members:
            assert f"{m.name} ({m.client_url}) {refused}" in said
        assert "sslv3 alert bad certificate" in said and "TLS failed" not in said
        with pytest.raises(AuthenticationError, match=r"m1 \(https://.*\) refused labctl's"):
            c.status(eps[1])
        with pytest.raises(AuthenticationError) as caught:
            c.healthy(eps[2])
        assert str(caught.value).startswith(f"m2 ({eps[2].url}) {refused}")
        # Not sent, so a request that is not safe to repeat tries every member too.
        with pytest.raises(AuthenticationError, match="no etcd member could delete"):
            c.delete("/labctl/never")
        with pytest.raises(AuthenticationError, match="no etcd member could take a snapshot"):
            c.snapshot(tmp_path / "never.db")
    assert not (tmp_path / "never.db").exists()


def test_a_refused_certificate_is_not_a_cluster_still_to_form(
    cluster: EtcdCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before it snapshots, records who joins, restores or guards quorum, labctl asks
    # whether a cluster answers; "none" means a cluster still to form. Members that
    # refuse labctl's certificate do answer: that must be said, not taken for "none".
    rogue = mint_loopback_pki(tmp_path / "rogue", BuiltinBackend())
    foreign = EtcdTls(
        cluster.ca,
        rogue.path("etcd-client-operator.pem"),
        rogue.path("etcd-client-operator-key.pem"),
    )
    inventory = require_inventory(REFERENCE)

    def session_with(tls: EtcdTls) -> EtcdSession:
        session = EtcdSession(inventory, tmp_path, timeout=5)
        session.endpoints = [endpoint(m) for m in cluster.members]
        monkeypatch.setattr(session, "tls", lambda: tls)
        return session

    with session_with(tls_of(cluster)) as session:  # labctl's own certificate: all healthy
        assert session.reachable_unhealthy() == {}
    with session_with(foreign) as session:
        with pytest.raises(AuthenticationError, match="refused labctl's client certificate"):
            session.reachable_unhealthy()
        start = time.monotonic()
        with pytest.raises(AuthenticationError, match=r"m0 .* refused labctl's client"):
            session.wait_healthy(10)
        assert time.monotonic() - start < 3


def test_a_killed_member_is_named_and_the_others_answer(
    own_cluster: EtcdCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = own_cluster
    m0, m1, m2 = (endpoint(m) for m in c.members)
    # A stopped member accepts the connection (the kernel does) and never answers.
    with EtcdClient([m1], tls_of(c), timeout=1.0) as quick:
        assert quick.healthy(m1) is None
        c.kill("m1", signal.SIGSTOP)
        try:
            start = time.monotonic()
            why = quick.healthy(m1)
            took = time.monotonic() - start
        finally:
            c.kill("m1", signal.SIGCONT)
        assert why == f"m1 ({m1.url}): no answer within 1 s"
        assert took < 3
    c.wait_healthy(c.members)

    # The killed member first: calls for any member must move on past it.
    with EtcdClient([m2, m0, m1], tls_of(c)) as client:
        assert client.healthy(m2) is None  # and a kept connection to it
        c.kill("m2", signal.SIGKILL)
        why = client.healthy(m2)
        assert why == f"m2 ({m2.url}) refused the connection: no etcd listens there"
        assert sorted(m.name for m in client.members()) == ["m0", "m1", "m2"]
        with pytest.raises(DriverError, match=r"m2 .* refused the connection"):
            client.status(m2)
        # If m2 led, m0 and m1 elect a new leader first (election timeout 1 s).
        until("a leader among m0 and m1", lambda: client.status(m0).leader_id or None, 10)
        client.put("/labctl/after-kill", b"still writable")
        assert client.get("/labctl/after-kill") == b"still writable"

        # m2 comes back on its data dir; the same client reaches it again.
        c.start(c.member("m2"), c.members, "existing")
        c.wait_healthy(c.members)
        assert client.healthy(m2) is None
        assert client.status(m2).member_id != 0

        # m0 restarts under a kept connection: the client sees it closed and reconnects.
        assert client.status(m0).member_id != 0
        c.kill("m0", signal.SIGTERM)
        c.start(c.member("m0"), c.members, "existing")
        c.wait_healthy(c.members)
        assert client.status(m0).member_id != 0

        # Same for m1, but the client does not look before it sends: the request
        # fails on the dead connection and goes again once on a new one.
        assert client.status(m1).member_id != 0
        c.kill("m1", signal.SIGTERM)
        c.start(c.member("m1"), c.members, "existing")
        c.wait_healthy(c.members)
        monkeypatch.setattr(etcd_driver, "_closed_by_peer", lambda sock: False)
        assert client.status(m1).member_id != 0

    # A request that is not safe to repeat is not sent again on a new connection: the
    # dead kept connection is said as such (it was a TypeError, a traceback).
    with EtcdClient([m1], tls_of(c)) as solo:
        assert solo.get("/labctl/solo") is None  # a kept connection to m1
        c.kill("m1", signal.SIGTERM)
        c.start(c.member("m1"), c.members, "existing")
        c.wait_healthy(c.members)
        with pytest.raises(DriverError, match=r"m1 .* closed the connection before it answered"):
            solo.delete("/labctl/solo")


def test_a_learner_joins_catches_up_is_promoted_and_removed(own_cluster: EtcdCluster) -> None:
    c = own_cluster
    first = list(c.members)
    with EtcdClient([endpoint(m) for m in first], tls_of(c)) as client:
        m3 = c.new_member(3)
        added = settled("add m3", lambda: client.add_member([m3.peer_url], learner=True))
        assert added.is_learner and added.id != 0 and added.peer_urls == (m3.peer_url,)
        assert added.name == ""  # no name until it has started
        listed = {m.id: m for m in client.members()}
        assert len(listed) == 4 and listed[added.id].is_learner

        c.start(m3, [*first, m3], "existing")
        learner = EtcdClient([endpoint(m3)], tls_of(c))
        try:
            leader = next(s for s in (client.status(endpoint(m)) for m in first) if s.is_leader)

            def caught_up() -> bool | None:
                try:
                    s = learner.status(endpoint(m3))
                except DriverError:
                    return None
                return True if s.is_learner and s.raft_index >= leader.raft_index else None

            until("m3 caught up with the leader", caught_up, within=30)
        finally:
            learner.close()

        def promoted() -> bool | None:
            try:
                client.promote_member(added.id)
            except LearnerNotReadyError:
                return None
            return True

        until("m3 promoted", promoted, within=30)

        # The member list is each member's own (not linearizable): the one asked may
        # not have applied the promotion yet, so it is asked until it has.
        def listed_as_voter() -> bool | None:
            member = {m.id: m for m in client.members()}.get(added.id)
            if member is None:
                return None
            return True if member.name == "m3" and not member.is_learner else None

        until("m3 listed as a voting member", listed_as_voter, within=10)
        with pytest.raises(EtcdRequestError, match="can only promote a learner member"):
            client.promote_member(added.id)
        c.wait_healthy([*first, m3])

        settled("remove m3", lambda: client.remove_member(added.id))

        def listed_without_m3() -> bool | None:
            names = sorted(m.name for m in client.members())
            return True if names == ["m0", "m1", "m2"] else None

        until("the members m0, m1, m2 listed alone", listed_without_m3, within=10)
        with pytest.raises(EtcdRequestError, match="member not found") as caught:
            client.remove_member(added.id)
        assert caught.value.code == 5
        assert c.exited("m3", within=30), "a removed member stops by itself"
        for m in first:
            assert client.healthy(endpoint(m)) is None


def test_a_full_database_raises_nospace_and_the_client_reports_it(
    pki: PkiStore, tmp_path: Path
) -> None:
    # A real alarm, raised by etcd itself: one member with a 1 MiB quota, filled.
    quota = ["--quota-backend-bytes", str(1 << 20)]
    with running_etcd_cluster(tmp_path / "etcd", pki, size=1, extra=quota) as c:
        only = endpoint(c.members[0])
        with EtcdClient([only], tls_of(c)) as client:
            assert client.alarms() == []
            with pytest.raises(EtcdRequestError, match="database space exceeded") as caught:
                for i in range(100):
                    client.put(f"/labctl/fill/{i}", os.urandom(64 * 1024))
            assert caught.value.code == 8  # RESOURCE_EXHAUSTED
            member_id = client.status(only).member_id
            assert client.alarms() == [Alarm(member_id, "NOSPACE")]
            assert any("NOSPACE" in e for e in client.status(only).errors)
            assert client.get("/labctl/fill/0") is not None  # reads still work
