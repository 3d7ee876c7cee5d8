"""The real proof: a 3-member TLS etcd cluster on loopback running labctl's certs."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labctl.pki.backend import Backend
from labctl.pki.builtin_backend import BuiltinBackend
from labctl.pki.mint import mint_all
from labctl.pki.specs import PkiInput, PkiNode
from labctl.pki.store import PkiStore
from tests.integration.pki.conftest import require

pytestmark = pytest.mark.integration
PASS = b"etcd-test-passphrase"
ADDRS = ("127.0.0.11", "127.0.0.12", "127.0.0.13")


def loopback_input() -> PkiInput:
    # etcd 3.4 with --peer-client-cert-auth checks the *source* IP of a dialing peer
    # against that peer's cert SANs. On one host every member dials out from 127.0.0.1
    # (the kernel's source for 127/8), so that really is an address of each member
    # here; on the lab each node dials from its own address, which is already a SAN.
    nodes = tuple(
        PkiNode(f"m{i}", (a, "127.0.0.1"), frozenset({"etcd", "control-plane"}))
        for i, a in enumerate(ADDRS)
    )
    return PkiInput(
        "etcdtest", "cluster.local", "10.3.0.0/24", "api.etcdtest", ADDRS[0], nodes, "operator"
    )


def free_port(addr: str) -> int:
    with socket.socket() as s:
        s.bind((addr, 0))
        return int(s.getsockname()[1])


@dataclass
class Member:
    name: str
    addr: str
    client: int
    peer: int

    @property
    def client_url(self) -> str:
        return f"https://{self.addr}:{self.client}"

    @property
    def peer_url(self) -> str:
        return f"https://{self.addr}:{self.peer}"


@pytest.fixture
def etcd_cluster(backend: Backend, tmp_path: Path) -> Iterator[tuple[PkiStore, list[Member]]]:
    etcd = require("etcd", "etcd-server")
    require("etcdctl", "etcd-client")
    store = PkiStore(tmp_path / "ssl")
    mint_all(loopback_input(), store, backend, PASS, dt.datetime.now(dt.UTC))
    members = [Member(f"m{i}", a, free_port(a), free_port(a)) for i, a in enumerate(ADDRS)]
    initial = ",".join(f"{m.name}={m.peer_url}" for m in members)
    ssl = store.root
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for m in members:
            log = open(tmp_path / f"{m.name}.log", "wb")  # noqa: SIM115 - closed in finally
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [
                        etcd,
                        "--name",
                        m.name,
                        "--data-dir",
                        str(tmp_path / f"{m.name}.etcd"),
                        "--listen-client-urls",
                        m.client_url,
                        "--advertise-client-urls",
                        m.client_url,
                        "--listen-peer-urls",
                        m.peer_url,
                        "--initial-advertise-peer-urls",
                        m.peer_url,
                        "--initial-cluster",
                        initial,
                        "--initial-cluster-state",
                        "new",
                        "--initial-cluster-token",
                        f"labctl-test-{os.getpid()}",
                        "--cert-file",
                        str(ssl / f"etcd-server-{m.name}.pem"),
                        "--key-file",
                        str(ssl / f"etcd-server-{m.name}-key.pem"),
                        "--client-cert-auth",
                        "--trusted-ca-file",
                        str(ssl / "ca.pem"),
                        "--peer-cert-file",
                        str(ssl / f"etcd-peer-{m.name}.pem"),
                        "--peer-key-file",
                        str(ssl / f"etcd-peer-{m.name}-key.pem"),
                        "--peer-client-cert-auth",
                        "--peer-trusted-ca-file",
                        str(ssl / "ca.pem"),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        yield store, members
    finally:
        # Kill exactly what we started, by pid, even when the test failed.
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        for log in logs:
            log.close()


def etcdctl(m: Member, cacert: Path, cert: Path, key: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "etcdctl",
            "--endpoints",
            m.client_url,
            "--cacert",
            str(cacert),
            "--cert",
            str(cert),
            "--key",
            str(key),
            "--dial-timeout",
            "3s",
            "--command-timeout",
            "5s",
            "endpoint",
            "health",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ETCDCTL_API": "3"},
    )


def test_three_member_tls_cluster(
    etcd_cluster: tuple[PkiStore, list[Member]], tmp_path: Path
) -> None:
    store, members = etcd_cluster
    ssl = store.root
    ca, cert, key = (
        ssl / "ca.pem",
        ssl / "etcd-client-operator.pem",
        ssl / "etcd-client-operator-key.pem",
    )
    # Health needs a quorum, so it only turns healthy once peers trust each other.
    deadline = time.monotonic() + 60
    pending = list(members)
    last = ""
    while pending and time.monotonic() < deadline:
        for m in list(pending):
            r = etcdctl(m, ca, cert, key)
            if r.returncode == 0 and "is healthy" in r.stdout + r.stderr:
                pending.remove(m)
            else:
                last = r.stdout + r.stderr
        if pending:
            time.sleep(0.5)
    logs = "\n".join((tmp_path / f"{m.name}.log").read_text()[-2000:] for m in pending)
    assert not pending, f"unhealthy: {[m.name for m in pending]}: {last}\n{logs}"

    # The member list proves all three joined over mutually authenticated peer TLS.
    r = subprocess.run(
        [
            "etcdctl",
            "--endpoints",
            members[0].client_url,
            "--cacert",
            str(ca),
            "--cert",
            str(cert),
            "--key",
            str(key),
            "member",
            "list",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ETCDCTL_API": "3"},
    )
    assert r.returncode == 0, r.stderr
    assert sum(m.peer_url in r.stdout for m in members) == 3

    # A client cert from another CA, same CN and usages, is refused by every member.
    rogue = PkiStore(tmp_path / "rogue")
    mint_all(loopback_input(), rogue, BuiltinBackend(), PASS, dt.datetime.now(dt.UTC))
    for m in members:
        bad = etcdctl(
            m,
            ca,
            rogue.root / "etcd-client-operator.pem",
            rogue.root / "etcd-client-operator-key.pem",
        )
        assert bad.returncode != 0, f"{m.name} accepted a foreign client cert"
        assert "is healthy" not in bad.stdout
