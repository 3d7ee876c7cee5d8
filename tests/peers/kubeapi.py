"""A real kube-apiserver on loopback, on a real etcd, with certificates labctl minted.

What a client certificate from another CA meets at the lab's API server cannot be
learnt from a TLS server that merely demands one: kube-apiserver asks for a
certificate without requiring it (its x509 authenticator checks it per request) and
answers an untrusted one with 401 Unauthorized, over a handshake that succeeded.
This starts the binary the set-up built (``scripts/build-kubernetes.sh``) with the
lab's authentication flags (``labctl/render/kubernetes/flags.py``: client CA,
anonymous access for probes, Node and RBAC authorization), and stops it by its pid.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from labctl.drivers.kubernetes import KubeClient, KubeTls
from labctl.errors import LabctlError
from labctl.pki.store import PkiStore
from tests.peers.etcd import EtcdCluster, free_port
from tests.peers.tlsserver import TlsServer


def stop(proc: subprocess.Popen[bytes]) -> None:
    """A peer this test started, ended: asked to stop, killed after 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextmanager
def running_kube_apiserver(
    binary: Path, addr: str, pki: PkiStore, etcd: EtcdCluster, log: Path, within: float = 90
) -> Iterator[TlsServer]:
    """kube-apiserver on ``addr`` (an address on the API certificate), ready on the way in."""
    if not binary.exists():
        raise AssertionError(f"{binary} is missing: run scripts/build-kubernetes.sh")
    port = free_port(addr)
    ssl = pki.root
    argv = [
        str(binary),
        f"--bind-address={addr}",
        f"--advertise-address={addr}",
        f"--secure-port={port}",
        "--authorization-mode=Node,RBAC",
        "--anonymous-auth=true",
        f"--client-ca-file={ssl / 'ca.pem'}",
        f"--tls-cert-file={ssl / 'apiserver.pem'}",
        f"--tls-private-key-file={ssl / 'apiserver-key.pem'}",
        f"--etcd-servers={','.join(m.client_url for m in etcd.members)}",
        f"--etcd-cafile={ssl / 'ca.pem'}",
        f"--etcd-certfile={ssl / 'etcd-client-apiserver.pem'}",
        f"--etcd-keyfile={ssl / 'etcd-client-apiserver-key.pem'}",
        "--service-cluster-ip-range=10.3.0.0/24",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={ssl / 'service-account.pub'}",
        f"--service-account-signing-key-file={ssl / 'service-account.key'}",
    ]
    server = TlsServer(addr, port)
    admin = KubeClient(
        server.url, KubeTls(ssl / "ca.pem", ssl / "admin.pem", ssl / "admin-key.pem"), timeout=2
    )
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        deadline = time.monotonic() + within
        why = "not asked yet"
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"kube-apiserver exited: {log.read_text()[-3000:]}")
            try:
                ready, why = admin.readyz()
            except LabctlError as exc:
                ready, why = False, str(exc)
            if ready:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"kube-apiserver not ready within {within:g} s: {why}")
            time.sleep(0.5)
        yield server
    finally:
        stop(proc)
