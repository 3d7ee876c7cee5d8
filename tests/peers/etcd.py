"""A real etcd 3.4 cluster on loopback, mutual TLS with labctl's certificates.

Both the PKI test (do labctl's certificates make a working cluster?) and the etcd
driver test (does labctl speak to one?) need the same cluster, and start-up has a
pitfall worth writing down once (SANs, below). Every process is started here and
stopped here by its pid, also when the test failed; members can be added to a
running cluster and killed to test what a client sees.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from labctl.pki.backend import Backend
from labctl.pki.mint import mint_all
from labctl.pki.specs import PkiInput, PkiNode
from labctl.pki.store import PkiStore

PASS = b"etcd-test-passphrase"
OPERATOR = "operator"
# Members m0..m2 start the cluster; m3 is minted too so a test can add it later.
ADDRS = ("127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14")


def require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise RuntimeError(f"{binary} not found on PATH; install the Debian package {package}")
    return path


def loopback_input(addrs: Sequence[str] = ADDRS) -> PkiInput:
    # etcd 3.4 with --peer-client-cert-auth checks the *source* IP of a dialing peer
    # against that peer's cert SANs. On one host every member dials out from 127.0.0.1
    # (the kernel's source for 127/8), so that really is an address of each member
    # here; on the lab each node dials from its own address, which is already a SAN.
    nodes = tuple(
        PkiNode(f"m{i}", (a, "127.0.0.1"), frozenset({"etcd", "control-plane"}))
        for i, a in enumerate(addrs)
    )
    return PkiInput(
        "etcdtest", "cluster.local", "10.3.0.0/24", "api.etcdtest", addrs[0], nodes, OPERATOR
    )


def mint_loopback_pki(root: Path, backend: Backend) -> PkiStore:
    """labctl's PKI for the loopback members, as the lab would get it."""
    store = PkiStore(root)
    mint_all(loopback_input(), store, backend, PASS, dt.datetime.now(dt.UTC))
    return store


def free_port(addr: str) -> int:
    with socket.socket() as s:
        s.bind((addr, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class EtcdMember:
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


@dataclass
class EtcdCluster:
    workdir: Path
    store: PkiStore
    members: list[EtcdMember] = field(default_factory=list)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)  # current
    _started: list[subprocess.Popen[bytes]] = field(default_factory=list)  # ever
    _logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def ca(self) -> Path:
        return self.store.path("ca.pem")

    @property
    def client_cert(self) -> Path:
        return self.store.path(f"etcd-client-{OPERATOR}.pem")

    @property
    def client_key(self) -> Path:
        return self.store.path(f"etcd-client-{OPERATOR}-key.pem")

    def member(self, name: str) -> EtcdMember:
        return next(m for m in self.members if m.name == name)

    def new_member(self, index: int) -> EtcdMember:
        """A member with fresh ports, not started yet (its certs are already minted)."""
        addr = ADDRS[index]
        return EtcdMember(f"m{index}", addr, free_port(addr), free_port(addr))

    def start(
        self,
        m: EtcdMember,
        initial: Sequence[EtcdMember],
        state: str,
        extra: Sequence[str] = (),
        binary: str | None = None,
    ) -> None:
        """Start ``m`` with ``initial`` as its initial cluster (``new`` or ``existing``);
        ``binary``: another etcd than Debian's (an upgrade's)."""
        running = self._procs.get(m.name)
        if running is not None and running.poll() is None:
            raise RuntimeError(f"{m.name} is already running (pid {running.pid})")
        ssl = self.store.root
        log = open(self.workdir / f"{m.name}.log", "ab")  # noqa: SIM115 - closed in stop_all
        self._logs.append(log)
        argv = [
            binary or require("etcd", "etcd-server"),
            "--name",
            m.name,
            "--data-dir",
            str(self.workdir / f"{m.name}.etcd"),
            "--listen-client-urls",
            m.client_url,
            "--advertise-client-urls",
            m.client_url,
            "--listen-peer-urls",
            m.peer_url,
            "--initial-advertise-peer-urls",
            m.peer_url,
            "--initial-cluster",
            ",".join(f"{x.name}={x.peer_url}" for x in initial),
            "--initial-cluster-state",
            state,
            "--initial-cluster-token",
            f"labctl-test-{os.getpid()}-{id(self)}",
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
            *extra,
        ]
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._procs[m.name] = proc
        self._started.append(proc)
        if m not in self.members:
            self.members.append(m)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the member's etcd; waits for it to end unless it only stops it."""
        proc = self._procs[name]
        if proc.poll() is None:
            os.kill(proc.pid, sig)
        if sig not in (signal.SIGSTOP, signal.SIGCONT):
            proc.wait(timeout=10)

    def exited(self, name: str, within: float) -> bool:
        """Whether the member's etcd ended on its own (a removed member does) in time."""
        try:
            self._procs[name].wait(timeout=within)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop_all(self, grace: float = 1.0) -> None:
        # Kill exactly what we started, by pid, even when the test failed. A member
        # whose peers are already gone can spend 10 s trying to hand over leadership;
        # its data is thrown away, so it gets ``grace`` seconds and then SIGKILL.
        for p in self._started:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
                os.kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in self._started:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        for log in self._logs:
            log.close()

    def log_tail(self, name: str, chars: int = 2000) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def etcdctl(
        self,
        m: EtcdMember,
        *args: str,
        cert: Path | None = None,
        key: Path | None = None,
        timeout: float = 20,
    ) -> subprocess.CompletedProcess[str]:
        """etcd's own client against ``m``: the reference the tests compare labctl with."""
        return subprocess.run(
            [
                require("etcdctl", "etcd-client"),
                "--endpoints",
                m.client_url,
                "--cacert",
                str(self.ca),
                "--cert",
                str(cert or self.client_cert),
                "--key",
                str(key or self.client_key),
                "--dial-timeout",
                "3s",
                "--command-timeout",
                "5s",
                *args,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env={**os.environ, "ETCDCTL_API": "3"},
        )

    def wait_healthy(self, members: Sequence[EtcdMember], within: float = 60) -> None:
        """Until etcdctl calls every member healthy; the error carries their logs."""
        # Health needs a quorum, so it only turns healthy once peers trust each other.
        deadline = time.monotonic() + within
        pending = list(members)
        last = ""
        while pending and time.monotonic() < deadline:
            for m in list(pending):
                r = self.etcdctl(m, "endpoint", "health")
                if r.returncode == 0 and "is healthy" in r.stdout + r.stderr:
                    pending.remove(m)
                else:
                    last = r.stdout + r.stderr
            if pending:
                time.sleep(0.3)
        if pending:
            logs = "\n".join(self.log_tail(m.name) for m in pending)
            raise AssertionError(
                f"not healthy within {within:g} s: {[m.name for m in pending]}: {last}\n{logs}"
            )


@contextmanager
def running_etcd_cluster(
    workdir: Path, store: PkiStore, size: int = 3, extra: Sequence[str] = ()
) -> Iterator[EtcdCluster]:
    """Members m0..m{size-1} started as a new cluster; all stopped on the way out."""
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = EtcdCluster(workdir, store)
    initial = [cluster.new_member(i) for i in range(size)]
    try:
        for m in initial:
            cluster.start(m, initial, "new", extra)
        cluster.wait_healthy(initial)
        yield cluster
    finally:
        cluster.stop_all()
