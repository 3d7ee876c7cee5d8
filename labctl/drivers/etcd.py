"""etcd driver: the lab's etcd v3 cluster, from the operator's machine, over mutual TLS.

The etcd layer and ``labctl etcd status|snapshot|restore`` need health, status,
membership, a few keys and snapshots, with labctl's own client certificate. etcd
serves a JSON gateway (grpc-gateway) for its v3 API on the client port, so the
standard library's ``http.client`` and ``ssl`` are enough: no gRPC stack to ship.

What the gateway sends (checked against etcd 3.4.23; samples in
``tests/fixtures/etcd/``): field names are the proto names (``dbSize``, ``ID``,
``peerURLs``, ``create_revision``), 64-bit integers are strings, bytes are base64,
and zero values are left out (a follower's status has no ``isLearner``, a miss has
no ``kvs``, an empty value no ``value``, the last snapshot chunk no
``remaining_bytes``), so every decoder defaults. Errors come as HTTP 4xx/5xx with
``{"error", "message", "code"}`` where ``code`` is the gRPC status code.

Both sides are verified: the member's certificate against the lab CA (never
skipped), ours by the member. Every call is bounded by ``timeout`` per connect and
per read. One connection per member is kept and reused (a lock per member makes a
client safe to share between threads); calls any member can answer try them in
order and, when none does, say why for each. Requests that are not safe to repeat
(delete, member add, promote, remove) go on to the next member only when the first
surely did not act on them (it refused the connection or our certificate).

For callers: with etcd's default strict reconfiguration check, membership changes
are refused with "etcdserver: unhealthy cluster" (``EtcdRequestError``, code 14)
until every voting member has been connected for 5 s, so right after a member
(re)starts; a learner can be promoted only once it has caught up
(``LearnerNotReadyError`` until then). Both are worth waiting out, bounded.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from labctl.drivers.tlsrefusal import issuer_of, refused_client_certificate, said_before_closing
from labctl.errors import (
    AuthenticationError,
    DriverError,
    DriverTimeout,
    LabctlError,
    UsageError,
)
from labctl.files import atomic_writer

T = TypeVar("T")

DEFAULT_CLIENT_PORT = 2379
# etcd's snapshot ends with the SHA-256 of the database before it; etcdctl snapshot
# restore checks it, so it stays in the file and we check it on the way in.
SNAPSHOT_TRAILER = 32
_READ_SIZE = 256 * 1024

# gRPC codes meaning "this member cannot serve that now, another one may":
# DEADLINE_EXCEEDED (4) and UNAVAILABLE (14: no leader, request timed out, stopping).
_TRY_ELSEWHERE_CODES = frozenset({4, 14})
# A kept connection the member closed in the meantime fails with one of these. (On a
# new connection the same errors can hide a refused client certificate: see
# ``tlsrefusal``.)
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError)


@dataclass(frozen=True)
class EtcdTls:
    """labctl's client certificate and the lab CA, files on the operator's machine."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class EtcdEndpoint:
    name: str  # member name (server name), for messages
    url: str  # https://ADDRESS:2379

    @property
    def label(self) -> str:
        return f"{self.name} ({self.url})"


@dataclass(frozen=True)
class Member:
    id: int
    name: str  # empty until an added member has started and joined
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool


@dataclass(frozen=True)
class EndpointStatus:
    name: str
    url: str
    member_id: int
    leader_id: int  # 0 when the member knows no leader
    raft_index: int
    raft_term: int
    db_size: int
    version: str
    revision: int = 0  # of the key-value store, as this member has applied it
    raft_applied_index: int = 0
    db_size_in_use: int = 0
    is_learner: bool = False
    errors: tuple[str, ...] = ()  # what the member itself reports ("etcdserver: no leader")

    @property
    def is_leader(self) -> bool:
        return self.leader_id != 0 and self.member_id == self.leader_id


@dataclass(frozen=True)
class Alarm:
    member_id: int
    alarm: str  # "NOSPACE", "CORRUPT"


@dataclass(frozen=True)
class SnapshotInfo:
    path: Path
    size: int
    sha256: str  # of the file as written, trailer included
    member: str  # the member it was taken from


class EtcdRequestError(DriverError):
    """A member answered the request with an etcd error (``code`` is the gRPC code)."""

    def __init__(self, message: str, code: int, reason: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class LearnerNotReadyError(EtcdRequestError):
    """A learner cannot be promoted yet: it has not caught up with the leader."""


class MalformedAnswer(ValueError):
    """A gateway answer that does not have the shape etcd 3.4 gives."""


# -- decoding the gateway's JSON (pure; unit-tested on recorded answers) ------------


def _uint(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key, 0)
    # 64-bit integers come as strings (JSON numbers lose precision above 2**53).
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedAnswer(f"{key} is {value!r}, not an integer")
    try:
        return int(value)
    except ValueError:
        raise MalformedAnswer(f"{key} is {value!r}, not an integer") from None


def _object(obj: Any, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise MalformedAnswer(f"{what} is {type(obj).__name__}, not an object")
    return obj


def _strings(obj: dict[str, Any], key: str) -> tuple[str, ...]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedAnswer(f"{key} is {value!r}, not a list of strings")
    return tuple(value)


def _b64(obj: dict[str, Any], key: str) -> bytes:
    value = obj.get(key, "")
    if not isinstance(value, str):
        raise MalformedAnswer(f"{key} is {value!r}, not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise MalformedAnswer(f"{key} is not valid base64") from None


def _b64_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_member(obj: Any) -> Member:
    m = _object(obj, "member")
    name = m.get("name", "")
    if not isinstance(name, str):
        raise MalformedAnswer(f"name is {name!r}, not text")
    return Member(
        id=_uint(m, "ID"),
        name=name,
        peer_urls=_strings(m, "peerURLs"),
        client_urls=_strings(m, "clientURLs"),
        is_learner=m.get("isLearner", False) is True,
    )


def decode_members(answer: Any) -> list[Member]:
    members = _object(answer, "answer").get("members", [])
    if not isinstance(members, list):
        raise MalformedAnswer("members is not a list")
    return [decode_member(m) for m in members]


def decode_status(endpoint: EtcdEndpoint, answer: Any) -> EndpointStatus:
    a = _object(answer, "answer")
    header = _object(a.get("header", {}), "header")
    version = a.get("version", "")
    if not isinstance(version, str):
        raise MalformedAnswer(f"version is {version!r}, not text")
    return EndpointStatus(
        name=endpoint.name,
        url=endpoint.url,
        member_id=_uint(header, "member_id"),
        leader_id=_uint(a, "leader"),
        raft_index=_uint(a, "raftIndex"),
        raft_term=_uint(a, "raftTerm"),
        db_size=_uint(a, "dbSize"),
        version=version,
        revision=_uint(header, "revision"),
        raft_applied_index=_uint(a, "raftAppliedIndex"),
        db_size_in_use=_uint(a, "dbSizeInUse"),
        is_learner=a.get("isLearner", False) is True,
        errors=_strings(a, "errors"),
    )


def decode_alarms(answer: Any) -> list[Alarm]:
    # The alarm answer has no header at all when there is no alarm: it is ``{}``.
    alarms = _object(answer, "answer").get("alarms", [])
    if not isinstance(alarms, list):
        raise MalformedAnswer("alarms is not a list")
    out = []
    for item in alarms:
        a = _object(item, "alarm")
        # AlarmType NONE is 0, so a NONE entry would come without ``alarm``.
        kind = a.get("alarm", "NONE")
        if not isinstance(kind, str):
            raise MalformedAnswer(f"alarm is {kind!r}, not a name")
        out.append(Alarm(member_id=_uint(a, "memberID"), alarm=kind))
    return out


def decode_range_value(answer: Any) -> bytes | None:
    kvs = _object(answer, "answer").get("kvs", [])
    if not isinstance(kvs, list):
        raise MalformedAnswer("kvs is not a list")
    if not kvs:
        return None
    # An empty value is a zero value, so it is left out: present but empty.
    return _b64(_object(kvs[0], "kv"), "value")


def decode_deleted(answer: Any) -> int:
    return _uint(_object(answer, "answer"), "deleted")


def health_problem(status: int, body: bytes) -> str | None:
    """None when ``/health`` says true; otherwise what it says instead."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if status == 200 and isinstance(answer, dict) and answer.get("health") == "true":
        return None
    # 503 {"health":"false"}: the member runs but has no leader or cannot reach a
    # quorum (3.4 says no more than that; later versions add a "reason").
    reason = answer.get("reason") if isinstance(answer, dict) else None
    return f"HTTP {status}, {reason or 'no leader, or no quorum behind it'}"


@dataclass(frozen=True)
class Versions:
    """What ``/version`` says: the member's own etcd, and the cluster's (the lowest
    minor every member runs, as ``X.Y.0``; empty while it is not decided yet)."""

    server: str
    cluster: str


def decode_versions(answer: Any) -> Versions:
    a = _object(answer, "answer")
    server, cluster = a.get("etcdserver", ""), a.get("etcdcluster", "")
    if not isinstance(server, str) or not isinstance(cluster, str):
        raise MalformedAnswer(f"versions are {server!r} and {cluster!r}, not text")
    return Versions(server, "" if cluster == "not_decided" else cluster)


def decode_added_member(answer: Any) -> Member:
    return decode_member(_object(answer, "answer").get("member"))


def decode_error(body: bytes) -> tuple[int, str]:
    """The gRPC code and etcd's message of an error answer (code 2, UNKNOWN, if neither)."""
    try:
        obj = json.loads(body)
    except ValueError:
        return 2, body.decode("utf-8", "replace").strip()[:200]
    if not isinstance(obj, dict):
        return 2, str(obj)[:200]
    code = obj.get("code", 2)
    message = obj.get("message") or obj.get("error") or ""
    return (code if isinstance(code, int) else 2), str(message)


class SnapshotStream:
    """The snapshot answer, one JSON object per line, turned back into database bytes.

    Fed pieces of the HTTP body as they arrive; holds at most one message (etcd
    sends 32 KiB per message, about 44 KB of base64) plus one read.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._scanned = 0
        self.remaining: int | None = None  # remaining_bytes of the last message

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n", self._scanned)
            if end < 0:
                self._scanned = len(self._buffer)
                return
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            self._scanned = 0
            if line.strip():
                yield self._blob(line)

    def finish(self) -> Iterator[bytes]:
        """The last message, when the body does not end with a newline."""
        if bytes(self._buffer).strip():
            line, self._buffer = bytes(self._buffer), bytearray()
            yield self._blob(line)

    def _blob(self, line: bytes) -> bytes:
        try:
            message = _object(json.loads(line), "message")
        except ValueError as exc:
            raise MalformedAnswer(f"a snapshot message is not JSON ({exc})") from None
        if "error" in message:
            # grpc-gateway reports an error met mid-stream as a message of its own.
            error = message["error"]
            text = error.get("message", error) if isinstance(error, dict) else error
            raise MalformedAnswer(f"the member stopped the snapshot: {text}")
        result = _object(message.get("result", {}), "result")
        self.remaining = _uint(result, "remaining_bytes")
        return _b64(result, "blob")


# -- the client -------------------------------------------------------------------


class _Unanswered(Exception):
    """One member did not answer; ``error`` says why, ``sent`` if it may have acted."""

    def __init__(self, error: DriverError, sent: bool, elsewhere: bool = True) -> None:
        super().__init__(str(error))
        self.error = error
        self.sent = sent
        self.elsewhere = elsewhere  # another member may answer where this one did not


@dataclass
class _Target:
    endpoint: EtcdEndpoint
    host: str
    port: int
    lock: threading.Lock
    conn: http.client.HTTPSConnection | None = None


class EtcdClient:
    """labctl's client for one etcd cluster; use as a context manager or call close()."""

    def __init__(
        self, endpoints: Sequence[EtcdEndpoint], tls: EtcdTls, timeout: float = 5.0
    ) -> None:
        if not endpoints:
            raise UsageError("an etcd client needs at least one member endpoint")
        self.endpoints = tuple(endpoints)
        self.tls = tls
        self.timeout = timeout
        self._context = _tls_context(tls)
        self._targets = {ep.url: _target(ep) for ep in self.endpoints}

    def __enter__(self) -> EtcdClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for target in self._targets.values():
            with target.lock:
                _drop(target)

    # -- one member ---------------------------------------------------------------

    def healthy(self, endpoint: EtcdEndpoint) -> str | None:
        """None when the member says it is healthy; otherwise a sentence saying why not.

        A refused certificate, the member's of ours or ours of the member's, is raised
        (``AuthenticationError``): the member answered, so no caller may take it for one
        that is down or not formed yet, and waiting will not change it.
        """
        try:
            status, body = self._exchange(endpoint, "GET", "/health", None, idempotent=True)
        except _Unanswered as failure:
            if isinstance(failure.error, AuthenticationError):
                raise failure.error from None
            return str(failure.error)
        problem = health_problem(status, body)
        return (
            None if problem is None else f"{endpoint.label} answers but is not healthy: {problem}"
        )

    def status(self, endpoint: EtcdEndpoint) -> EndpointStatus:
        return self._one(
            endpoint,
            "/v3/maintenance/status",
            {},
            lambda a: decode_status(endpoint, a),
        )

    def versions(self, endpoint: EtcdEndpoint) -> Versions:
        """The member's etcd version and the cluster version it knows (``/version``)."""
        try:
            status, body = self._exchange(endpoint, "GET", "/version", None, idempotent=True)
        except _Unanswered as failure:
            raise failure.error from None
        if status != 200:
            raise _refusal(endpoint, "/version", status, body).error
        try:
            return decode_versions(json.loads(body))
        except (ValueError, MalformedAnswer) as exc:
            raise DriverError(
                f"{endpoint.label} answered /version with something else: {exc}"
            ) from None

    def move_leader(self, leader: EtcdEndpoint, member_id: int) -> None:
        """Hand leadership from ``leader`` (it must be the leader: only it can) to the
        voting member ``member_id``; etcd answers once the new leader has taken over."""
        self._one(
            leader,
            "/v3/maintenance/transfer-leadership",
            {"targetID": str(member_id)},
            lambda a: None,
        )

    # -- any member -----------------------------------------------------------------

    def members(self) -> list[Member]:
        return self._any("/v3/cluster/member/list", {}, decode_members, "list the members")

    def alarms(self) -> list[Alarm]:
        return self._any(
            "/v3/maintenance/alarm", {"action": "GET"}, decode_alarms, "list the alarms"
        )

    def put(self, key: str, value: bytes) -> None:
        body = {"key": _b64_text(key.encode()), "value": _b64_text(value)}
        self._any("/v3/kv/put", body, lambda a: None, f"put {key!r}")

    def get(self, key: str) -> bytes | None:
        body = {"key": _b64_text(key.encode())}
        return self._any("/v3/kv/range", body, decode_range_value, f"read {key!r}")

    def delete(self, key: str) -> int:
        body = {"key": _b64_text(key.encode())}
        # Not resent elsewhere once sent: a second delete would count 0 for a key
        # the first one already removed.
        return self._any(
            "/v3/kv/deleterange", body, decode_deleted, f"delete {key!r}", idempotent=False
        )

    def add_member(self, peer_urls: Sequence[str], learner: bool = False) -> Member:
        body: dict[str, Any] = {"peerURLs": list(peer_urls), "isLearner": learner}
        what = f"add a {'learner' if learner else 'member'} at {', '.join(peer_urls)}"
        # Never resent once a member may have acted on it: the second add would fail
        # with "Peer URLs already exists" and hide that the first one worked.
        return self._any(
            "/v3/cluster/member/add", body, decode_added_member, what, idempotent=False
        )

    def promote_member(self, member_id: int) -> None:
        self._any(
            "/v3/cluster/member/promote",
            {"ID": str(member_id)},
            lambda a: None,
            f"promote learner {member_id:x}",
            idempotent=False,
        )

    def remove_member(self, member_id: int) -> None:
        self._any(
            "/v3/cluster/member/remove",
            {"ID": str(member_id)},
            lambda a: None,
            f"remove member {member_id:x}",
            idempotent=False,
        )

    def snapshot(self, out: Path) -> SnapshotInfo:
        """The first member that answers streams its database into ``out``, atomically.

        The stream goes to a temp file next to ``out`` (mode 0600: a snapshot holds
        every secret in etcd), is checked against etcd's own SHA-256 trailer, fsynced
        and renamed over ``out``; a failure leaves ``out`` as it was.
        """
        failures: list[_Unanswered] = []
        for endpoint in self.endpoints:
            try:
                return self._snapshot_from(endpoint, out)
            except _Unanswered as failure:
                failures.append(failure)
        raise _none_answered(f"take a snapshot into {out}", failures)

    # -- plumbing -------------------------------------------------------------------

    def _one(
        self, endpoint: EtcdEndpoint, path: str, body: dict[str, Any], decode: Callable[[Any], T]
    ) -> T:
        try:
            return self._call(endpoint, path, body, decode, idempotent=True)
        except _Unanswered as failure:
            raise failure.error from None

    def _any(
        self,
        path: str,
        body: dict[str, Any],
        decode: Callable[[Any], T],
        what: str,
        idempotent: bool = True,
    ) -> T:
        failures: list[_Unanswered] = []
        for endpoint in self.endpoints:
            try:
                return self._call(endpoint, path, body, decode, idempotent)
            except _Unanswered as failure:
                failures.append(failure)
                if not failure.elsewhere or (failure.sent and not idempotent):
                    raise failure.error from None
        raise _none_answered(what, failures)

    def _call(
        self,
        endpoint: EtcdEndpoint,
        path: str,
        body: dict[str, Any],
        decode: Callable[[Any], T],
        idempotent: bool,
    ) -> T:
        status, raw = self._exchange(endpoint, "POST", path, body, idempotent)
        if status != 200:
            raise _refusal(endpoint, path, status, raw)
        try:
            return decode(json.loads(raw))
        except (ValueError, MalformedAnswer) as exc:
            raise _Unanswered(
                DriverError(f"{endpoint.label} answered {path} with something else: {exc}"),
                sent=True,
            ) from None

    def _exchange(
        self,
        endpoint: EtcdEndpoint,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        idempotent: bool,
    ) -> tuple[int, bytes]:
        """One request and its whole answer, over the member's kept connection."""
        payload = None if body is None else json.dumps(body).encode()
        target = self._targets[endpoint.url]
        with target.lock:
            response = self._open(target, method, path, payload, idempotent)
            try:
                return response.status, response.read()
            except (OSError, http.client.HTTPException) as exc:
                _drop(target)
                raise self._failure(endpoint, exc, sent=True) from None

    def _open(
        self, target: _Target, method: str, path: str, payload: bytes | None, idempotent: bool
    ) -> http.client.HTTPResponse:
        """Send the request and read the answer's head; the caller holds the lock."""
        reused = self._ready(target)
        try:
            return self._send(target, method, path, payload)
        except (OSError, http.client.HTTPException) as exc:
            # On a new connection an EOF or reset may be the member refusing our
            # certificate (TLS 1.3 tells it after the handshake): look for its alert.
            cause = exc if reused else _said_before_closing(target, exc)
            _drop(target)
            if not (reused and idempotent and isinstance(exc, _STALE)):
                raise self._failure(target.endpoint, cause, sent=True) from None
        # The member closed the kept connection (it restarted, or dropped it) before
        # it read the request: once more on a new one.
        self._ready(target)
        try:
            return self._send(target, method, path, payload)
        except (OSError, http.client.HTTPException) as exc:
            cause = _said_before_closing(target, exc)
            _drop(target)
            raise self._failure(target.endpoint, cause, sent=True) from None

    def _ready(self, target: _Target) -> bool:
        """Connect if needed; True when an existing connection is reused."""
        conn = target.conn
        if conn is not None and conn.sock is not None and not _closed_by_peer(conn.sock):
            return True
        _drop(target)
        target.conn = http.client.HTTPSConnection(
            target.host, target.port, timeout=self.timeout, context=self._context
        )
        try:
            target.conn.connect()
        except (OSError, http.client.HTTPException) as exc:
            _drop(target)
            raise self._failure(target.endpoint, exc, sent=False) from None
        return False

    def _send(
        self, target: _Target, method: str, path: str, payload: bytes | None
    ) -> http.client.HTTPResponse:
        if target.conn is None:
            self._ready(target)
        assert target.conn is not None  # _ready connected or raised
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        target.conn.request(method, path, body=payload, headers=headers)
        return target.conn.getresponse()

    def _failure(self, endpoint: EtcdEndpoint, exc: BaseException, sent: bool) -> _Unanswered:
        label = endpoint.label
        error: DriverError
        if isinstance(exc, ssl.SSLCertVerificationError):
            error = AuthenticationError(
                f"labctl refused the server certificate of {label}: it does not verify "
                f"against the CA in {self.tls.ca} ({exc.verify_message})"
            )
            return _Unanswered(error, sent=False)
        alert = refused_client_certificate(exc)
        if alert is not None:
            # The member refused the handshake, so it never read the request.
            error = AuthenticationError(
                f"{label} refused labctl's client certificate {self.tls.cert} (issued by "
                f"{issuer_of(self.tls.cert)}; {alert}): it is not signed by a CA the member "
                "trusts"
            )
            return _Unanswered(error, sent=False)
        if isinstance(exc, (*_STALE, http.client.IncompleteRead)):
            error = DriverError(f"{label} closed the connection before it answered")
            return _Unanswered(error, sent=sent)
        if isinstance(exc, ssl.SSLError):
            return _Unanswered(DriverError(f"{label}: TLS failed: {exc.reason or exc}"), sent=sent)
        if isinstance(exc, ConnectionRefusedError):
            error = DriverError(f"{label} refused the connection: no etcd listens there")
            return _Unanswered(error, sent=False)
        if isinstance(exc, TimeoutError):
            error = DriverTimeout(f"{label}: no answer within {self.timeout:g} s")
            return _Unanswered(error, sent=sent)
        if isinstance(exc, http.client.HTTPException):
            error = DriverError(f"{label} did not answer in HTTP ({type(exc).__name__})")
            return _Unanswered(error, sent=sent)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return _Unanswered(DriverError(f"{label}: cannot connect: {reason}"), sent=sent)

    def _snapshot_from(self, endpoint: EtcdEndpoint, out: Path) -> SnapshotInfo:
        target = self._targets[endpoint.url]
        path = "/v3/maintenance/snapshot"
        with target.lock:
            response = self._open(target, "POST", path, b"{}", idempotent=True)
            if response.status != 200:
                try:
                    raw = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    _drop(target)
                    raise self._failure(endpoint, exc, sent=True) from None
                raise _refusal(endpoint, path, response.status, raw)

            def read() -> bytes:
                try:
                    return response.read1(_READ_SIZE)
                except (OSError, http.client.HTTPException) as exc:
                    raise self._failure(endpoint, exc, sent=True) from None

            try:
                return _write_snapshot(endpoint, read, out)
            except BaseException:
                # Whatever stopped it, the rest of the stream is still on the wire.
                _drop(target)
                raise


def _write_snapshot(endpoint: EtcdEndpoint, read: Callable[[], bytes], out: Path) -> SnapshotInfo:
    stream = SnapshotStream()
    whole = hashlib.sha256()
    database = hashlib.sha256()
    tail = b""  # the last bytes seen: the trailer once the stream ends
    size = 0
    try:
        with atomic_writer(out, 0o600) as handle:
            while True:
                data = read()
                blobs = stream.feed(data) if data else stream.finish()
                for blob in blobs:
                    handle.write(blob)
                    whole.update(blob)
                    size += len(blob)
                    joined = tail + blob
                    database.update(joined[:-SNAPSHOT_TRAILER])
                    tail = joined[-SNAPSHOT_TRAILER:]
                if not data:
                    break
            if size <= SNAPSHOT_TRAILER or database.digest() != tail:
                raise MalformedAnswer(
                    f"the stream ended after {size} bytes without a matching SHA-256 "
                    "trailer (cut short or corrupt)"
                )
    except MalformedAnswer as exc:
        error = DriverError(f"{endpoint.label}: snapshot not written to {out}: {exc}")
        raise _Unanswered(error, sent=True) from None
    except OSError as exc:
        # Network errors arrive as _Unanswered from read(): this one is our own disk.
        raise LabctlError(
            f"cannot write the snapshot from {endpoint.label} to {out}: {exc.strerror or exc}"
        ) from None
    return SnapshotInfo(path=out, size=size, sha256=whole.hexdigest(), member=endpoint.name)


def _refusal(endpoint: EtcdEndpoint, path: str, status: int, raw: bytes) -> _Unanswered:
    """An error answer, and whether another member might do better."""
    code, reason = decode_error(raw)
    message = f"{endpoint.label} refused {path}: {reason or f'HTTP {status}'}"
    kind = LearnerNotReadyError if "in sync with leader" in reason else EtcdRequestError
    # The gateway's own deadline comes back as UNKNOWN with the context's message.
    busy = code in _TRY_ELSEWHERE_CODES or "deadline exceeded" in reason
    # A learner refuses what it cannot serve before doing anything: try a voter.
    acted = "not supported for learner" not in reason
    return _Unanswered(kind(message, code, reason), sent=acted, elsewhere=busy)


def _none_answered(what: str, failures: Sequence[_Unanswered]) -> DriverError:
    if len(failures) == 1:
        return failures[0].error
    errors = [f.error for f in failures]
    reasons = "; ".join(str(e) for e in errors)
    message = f"no etcd member could {what}: {reasons}"
    if all(isinstance(e, AuthenticationError) for e in errors):
        return AuthenticationError(message)
    if all(isinstance(e, DriverTimeout) for e in errors):
        return DriverTimeout(message)
    return DriverError(message)


def _target(endpoint: EtcdEndpoint) -> _Target:
    parts = urlsplit(endpoint.url)
    if parts.scheme != "https" or not parts.hostname:
        raise UsageError(
            f"etcd member {endpoint.name}'s client URL {endpoint.url!r} is not https://HOST:PORT; "
            "labctl talks to etcd only over mutual TLS"
        )
    try:
        port = parts.port or DEFAULT_CLIENT_PORT
    except ValueError:
        raise UsageError(
            f"etcd member {endpoint.name}'s client URL {endpoint.url!r} has a bad port"
        ) from None
    return _Target(endpoint, parts.hostname, port, threading.Lock())


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether an idle kept connection has something to read: the member closed it.

    (Or sent something unasked; either way a new connection, one handshake, is safer.)
    """
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _said_before_closing(target: _Target, exc: BaseException) -> BaseException:
    """``said_before_closing`` on the target's connection, before it is dropped."""
    return said_before_closing(target.conn.sock if target.conn else None, exc)


def _drop(target: _Target) -> None:
    if target.conn is not None:
        target.conn.close()
        target.conn = None


def _tls_context(tls: EtcdTls) -> ssl.SSLContext:
    for what, path in (("CA", tls.ca), ("client certificate", tls.cert), ("client key", tls.key)):
        if not Path(path).is_file():
            raise UsageError(f"the etcd {what} {path} does not exist")
    # PROTOCOL_TLS_CLIENT verifies the member's certificate and name: never relaxed.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=os.fspath(tls.ca))
    except ssl.SSLError as exc:
        raise UsageError(f"the etcd CA {tls.ca} does not load: {exc.reason or exc}") from None

    def no_passphrase() -> bytes:
        # Without this OpenSSL would prompt on the terminal for an encrypted key.
        raise UsageError(
            f"the etcd client key {tls.key} is encrypted; labctl needs it plain (0600)"
        )

    try:
        context.load_cert_chain(os.fspath(tls.cert), os.fspath(tls.key), password=no_passphrase)
    except ssl.SSLError as exc:
        raise UsageError(
            f"the etcd client certificate {tls.cert} and key {tls.key} do not load together: "
            f"{exc.reason or exc}"
        ) from None
    return context
