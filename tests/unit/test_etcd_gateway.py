"""Decoding etcd's JSON gateway, on answers recorded from a real etcd 3.4.23.

The gateway leaves zero values out and sends 64-bit integers as strings; a decoder
that expects a field etcd omits breaks only on the cluster where it is zero (a
follower, a learner, a miss), so each shape is checked on a recorded answer
(``tests/fixtures/etcd/``). The snapshot stream is rebuilt in the recorded framing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.drivers.etcd import (
    Alarm,
    EtcdClient,
    EtcdEndpoint,
    EtcdRequestError,
    EtcdTls,
    LearnerNotReadyError,
    MalformedAnswer,
    SnapshotStream,
    _refusal,
    _Unanswered,
    _write_snapshot,
    decode_added_member,
    decode_alarms,
    decode_deleted,
    decode_error,
    decode_members,
    decode_range_value,
    decode_status,
    health_problem,
)
from labctl.errors import DriverError, UsageError
from tests.conftest import FIXTURES

SAMPLES = FIXTURES / "etcd"
EP = EtcdEndpoint("m0", "https://127.0.0.11:2379")


def sample(name: str) -> Any:
    return json.loads((SAMPLES / f"{name}.json").read_bytes())


def raw(name: str) -> bytes:
    return (SAMPLES / f"{name}.json").read_bytes()


def test_status_of_the_leader() -> None:
    s = decode_status(EP, sample("status"))
    assert (s.name, s.url) == ("m0", EP.url)
    assert s.member_id == s.leader_id == 9656067082875565365  # above 2**63: exact
    assert s.is_leader and not s.is_learner
    assert (s.raft_index, s.raft_term, s.raft_applied_index) == (60, 2, 60)
    assert (s.db_size, s.db_size_in_use, s.revision) == (2224128, 2224128, 44)
    assert s.version == "3.4.23" and s.errors == ()


def test_status_of_a_follower_and_of_a_learner() -> None:
    follower = decode_status(EP, sample("status_follower"))
    assert follower.leader_id == 9656067082875565365 != follower.member_id
    assert not follower.is_leader
    learner = decode_status(EP, sample("status_learner"))
    assert learner.is_learner and not learner.is_leader and learner.revision == 1


def test_status_without_a_leader_says_so() -> None:
    # No quorum: etcd leaves "leader" out (it is 0) and says why in "errors".
    s = decode_status(EP, sample("status_no_leader"))
    assert s.leader_id == 0 and not s.is_leader
    assert s.errors == ("etcdserver: no leader",)
    alarmed = decode_status(EP, sample("status_alarm"))
    assert alarmed.errors == ("memberID:9656067082875565365 alarm:NOSPACE ",)


def test_members_with_ids_as_strings() -> None:
    members = {m.name: m for m in decode_members(sample("member_list"))}
    assert sorted(members) == ["m0", "m1", "m2"]
    assert members["m2"].id == 11076414172825019130
    assert members["m1"].peer_urls == ("https://127.0.0.12:55799",)
    assert members["m1"].client_urls == ("https://127.0.0.12:55633",)
    assert not any(m.is_learner for m in members.values())


def test_a_learner_added_but_not_started_has_no_name_and_no_client_url() -> None:
    added = decode_added_member(sample("member_add_learner"))
    assert added.id == 1629661958926773928 and added.is_learner
    assert (added.name, added.client_urls) == ("", ())
    assert added.peer_urls == ("https://127.0.0.14:2380",)
    listed = {m.id: m for m in decode_members(sample("member_list_learner"))}
    assert listed[added.id] == added and len(listed) == 4
    started = [m for m in decode_members(sample("member_list_learner_started")) if m.is_learner]
    assert [(m.name, len(m.client_urls)) for m in started] == [("m3", 1)]
    assert len(decode_members(sample("member_remove"))) == 3


def test_alarms() -> None:
    assert decode_alarms(sample("alarm_none")) == []  # "{}": not even a header
    assert decode_alarms(sample("alarm_nospace")) == [Alarm(9656067082875565365, "NOSPACE")]


def test_range_hit_empty_value_and_miss() -> None:
    assert decode_range_value(sample("range_hit")) == b"bar"
    assert decode_range_value(sample("range_empty_value")) == b""
    assert decode_range_value(sample("range_miss")) is None
    assert decode_deleted(sample("deleterange_one")) == 1
    assert decode_deleted(sample("deleterange_none")) == 0


def test_health() -> None:
    assert health_problem(200, raw("health_ok")) is None
    assert health_problem(503, raw("health_false")) == "HTTP 503, no leader, or no quorum behind it"
    assert health_problem(200, b"not json") == "HTTP 200, no leader, or no quorum behind it"


@pytest.mark.parametrize(
    ("name", "kind", "code", "elsewhere", "sent"),
    [
        ("promote_not_ready", LearnerNotReadyError, 9, False, True),
        ("promote_unknown", EtcdRequestError, 5, False, True),
        ("put_nospace", EtcdRequestError, 8, False, True),
        ("range_timed_out", EtcdRequestError, 14, True, True),
        ("put_on_learner", EtcdRequestError, 14, True, False),
    ],
)
def test_error_answers_say_whether_another_member_may_do_better(
    name: str, kind: type[EtcdRequestError], code: int, elsewhere: bool, sent: bool
) -> None:
    failure = _refusal(EP, "/v3/x", 400, raw(name))
    assert type(failure.error) is kind
    assert failure.error.code == code
    assert (failure.elsewhere, failure.sent) == (elsewhere, sent)
    reason = sample(name)["message"]
    assert str(failure.error) == f"m0 (https://127.0.0.11:2379) refused /v3/x: {reason}"


def test_an_error_that_is_not_json() -> None:
    # An unknown path: grpc-gateway's plain text 404.
    assert decode_error(b"Not Found\n") == (2, "Not Found")
    assert "HTTP 404" in str(_refusal(EP, "/v3/nope", 404, b"").error)


@pytest.mark.parametrize(
    ("decode", "answer"),
    [
        (decode_members, {"members": [{"ID": 1.5}]}),
        (decode_members, {"members": [{"ID": "x"}]}),
        (decode_members, {"members": [{"ID": "1", "peerURLs": "https://a"}]}),
        (decode_members, {"members": "m0"}),
        (decode_alarms, {"alarms": [{"memberID": "1", "alarm": 1}]}),
        (decode_range_value, {"kvs": [{"value": "not base64!"}]}),
        (decode_deleted, {"deleted": True}),
        (decode_deleted, []),
        (lambda a: decode_status(EP, a), {"header": "m0"}),
    ],
)
def test_malformed_answers_are_refused(decode: Callable[[Any], object], answer: object) -> None:
    with pytest.raises(MalformedAnswer):
        decode(answer)


# -- the snapshot stream --------------------------------------------------------------


def gateway_stream(db: bytes, trailer: bytes | None = None) -> bytes:
    """What etcd 3.4's gateway sends for ``db``: 32 KiB per message, then the SHA-256."""
    lines = []
    for start in range(0, len(db), 32768):
        chunk = db[start : start + 32768]
        result: dict[str, str] = {}
        remaining = len(db) - start - len(chunk)
        if remaining:  # zero is left out, as in the recording
            result["remaining_bytes"] = str(remaining)
        result["blob"] = base64.b64encode(chunk).decode()
        lines.append(json.dumps({"result": result}, separators=(",", ":")))
    digest = hashlib.sha256(db).digest() if trailer is None else trailer
    lines.append(json.dumps({"result": {"blob": base64.b64encode(digest).decode()}}))
    return "\n".join(lines).encode() + b"\n"


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def reader(data: bytes, size: int = 1000) -> Callable[[], bytes]:
    it = pieces(data, size)
    return lambda: next(it, b"")


@pytest.mark.parametrize("size", [1, 999, 65536, 10**7])
def test_the_stream_gives_the_database_back_whatever_the_reads(size: int) -> None:
    db = os.urandom(4096 * 20)
    stream = SnapshotStream()
    got = b"".join(blob for part in pieces(gateway_stream(db), size) for blob in stream.feed(part))
    got += b"".join(stream.finish())
    assert got == db + hashlib.sha256(db).digest()
    assert stream.remaining == 0


def test_the_last_message_without_a_newline_still_counts() -> None:
    stream = SnapshotStream()
    body = gateway_stream(b"x" * 100).rstrip(b"\n")
    got = b"".join(stream.feed(body)) + b"".join(stream.finish())
    assert got == b"x" * 100 + hashlib.sha256(b"x" * 100).digest()


def test_an_error_in_the_stream_stops_it() -> None:
    body = b'{"error":{"grpc_code":14,"message":"etcdserver: server stopped"}}\n'
    with pytest.raises(MalformedAnswer, match="server stopped"):
        list(SnapshotStream().feed(body))


def test_a_snapshot_is_written_whole_with_mode_0600(tmp_path: Path) -> None:
    db = os.urandom(4096 * 10)
    out = tmp_path / "etcd.db"
    info = _write_snapshot(EP, reader(gateway_stream(db)), out)
    data = db + hashlib.sha256(db).digest()
    assert out.read_bytes() == data
    assert (info.size, info.sha256, info.member) == (
        len(data),
        hashlib.sha256(data).hexdigest(),
        "m0",
    )
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda body: body[: len(body) // 2], id="cut-short"),
        pytest.param(lambda body: body.rsplit(b"\n", 2)[0] + b"\n", id="no-trailer"),
        pytest.param(lambda body: body.replace(b'"blob":"', b'"blob":"AAAA', 1), id="corrupt"),
        pytest.param(lambda body: b"", id="empty"),
    ],
)
def test_a_bad_stream_leaves_the_previous_snapshot(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    out = tmp_path / "etcd.db"
    out.write_bytes(b"previous")
    body = damage(gateway_stream(os.urandom(4096 * 10)))
    with pytest.raises(_Unanswered) as caught:  # the client collects these per member
        _write_snapshot(EP, reader(body), out)
    assert type(caught.value.error) is DriverError
    assert str(caught.value.error).startswith(f"m0 ({EP.url}): snapshot not written to {out}: ")
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["etcd.db"]


def test_a_wrong_trailer_is_refused(tmp_path: Path) -> None:
    body = gateway_stream(os.urandom(8192), trailer=bytes(32))
    with pytest.raises(_Unanswered, match="without a matching SHA-256 trailer"):
        _write_snapshot(EP, reader(body), tmp_path / "etcd.db")
    assert list(tmp_path.iterdir()) == []


# -- what the client refuses before it dials ------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> EtcdTls:
    from labctl.pki.builtin_backend import BuiltinBackend
    from tests.peers.etcd import mint_loopback_pki

    store = mint_loopback_pki(tmp_path_factory.mktemp("pki"), BuiltinBackend())
    return EtcdTls(
        store.path("ca.pem"),
        store.path("etcd-client-operator.pem"),
        store.path("etcd-client-operator-key.pem"),
    )


def test_only_https_endpoints(tls: EtcdTls) -> None:
    with pytest.raises(
        UsageError, match=r"m0's client URL 'http://127\.0\.0\.11:2379'.*mutual TLS"
    ):
        EtcdClient([EtcdEndpoint("m0", "http://127.0.0.11:2379")], tls)
    with pytest.raises(UsageError, match="at least one"):
        EtcdClient([], tls)
    # No port means etcd's client port.
    with EtcdClient([EtcdEndpoint("m0", "https://127.0.0.11")], tls) as client:
        assert client._targets["https://127.0.0.11"].port == 2379


def test_tls_files_that_do_not_load(tls: EtcdTls, tmp_path: Path) -> None:
    with pytest.raises(
        UsageError, match=re.escape(f"the etcd CA {tmp_path}/nope.pem does not exist")
    ):
        EtcdClient([EP], EtcdTls(tmp_path / "nope.pem", tls.cert, tls.key))
    with pytest.raises(UsageError, match="do not load together"):
        EtcdClient([EP], EtcdTls(tls.ca, tls.ca, tls.key))


def test_an_encrypted_key_is_refused_without_a_prompt(tls: EtcdTls, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(tls.key.read_bytes(), None)
    locked = tmp_path / "locked-key.pem"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(UsageError, match=re.escape(f"the etcd client key {locked} is encrypted")):
        EtcdClient([EP], EtcdTls(tls.ca, tls.cert, locked))
