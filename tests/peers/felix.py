"""Calico's Felix, built from Calico's source, in a network namespace of its own.

Felix (``calico-node -felix``) is the part of calico-node that programs the node's
data plane from the datastore: the routes to each pod's veth, the ``cali-*``
iptables chains (policy, and NAT for traffic leaving an IPPool with
``natOutgoing``), the ipsets those chains match. Nothing on the simulated lab runs
it; here it runs against a real kube-apiserver inside a namespace this module
makes (``felix<pid>-node``), with the pod's own namespace beside it
(``felix<pid>-pod``) joined by the veth Calico's CNI plugin creates. Both are
removed by name at the end, and every process started in them is killed by its
pid. Names start with neither ``lab-`` nor ``labctl``: a simulated lab's "left
nothing behind" check (tests/e2e/conftest.py's ``host_state``) is not about them.

Felix runs with calico-node's settings for a Kubernetes datastore, IPv4 only,
usage reporting off (it would reach the Internet) and its health endpoint on, at
the default port inside the namespace, which ``calico-node -felix-ready`` asks.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from labctl.programs import BIRD1
from tests.peers.calico import cni_add_env, cni_netconf
from tests.peers.kubeapi import stop


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True)


@dataclass(frozen=True)
class Namespaces:
    node: str
    pod: str
    peer: str

    def run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """``argv`` in the node's namespace."""
        return subprocess.run(
            ["ip", "netns", "exec", self.node, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@contextmanager
def namespaces(uplink: dict[str, tuple[str, str]], gateway: str) -> Iterator[Namespaces]:
    """The node's, the pod's and a peer's namespace; the node and the peer joined by a
    veth (``eth0`` on both) carrying, per network, (node's address, peer's address)
    with their prefix lengths: the node's uplink, as its switch port would be. The
    peer also holds ``gateway``, the node's default route (a node has one; without
    it no proxy ARP answers the pod's gateway, 169.254.1.1)."""
    tag = f"felix{os.getpid()}"
    ns = Namespaces(f"{tag}-node", f"{tag}-pod", f"{tag}-peer")
    made: list[str] = []
    try:
        for name in (ns.node, ns.pod, ns.peer):
            _ip("netns", "add", name)
            made.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", ns.node, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
            "netns", ns.peer)  # fmt: skip
        for node_address, peer_address in uplink.values():
            _ip("-n", ns.node, "addr", "add", node_address, "dev", "eth0")
            _ip("-n", ns.peer, "addr", "add", peer_address, "dev", "eth0")
        _ip("-n", ns.peer, "addr", "add", f"{gateway}/32", "dev", "eth0")
        for name in (ns.node, ns.peer):
            _ip("-n", name, "link", "set", "eth0", "up")
        _ip("-n", ns.node, "route", "add", "default", "via", gateway, "dev", "eth0", "onlink")
        yield ns
    finally:
        for name in made:
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
            for pid in pids.stdout.split():
                subprocess.run(["kill", "-9", pid], check=False)
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)


def in_netns(netns: str, make: Callable[[], T]) -> T:
    """``make()`` run inside ``netns``: by a thread that enters the namespace
    (``setns`` moves only the calling thread) and leaves it. A socket made there stays
    in that namespace."""
    made: list[T | BaseException] = []

    def work() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            if _LIBC.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {netns}")
            made.append(make())
        except BaseException as e:  # handed to the caller's thread
            made.append(e)
        finally:
            _LIBC.setns(own, CLONE_NEWNET)
            os.close(own)
            os.close(target)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0]


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@contextmanager
def forwarded(netns: str, host: str, port: int) -> Iterator[None]:
    """``host:port`` (the test's kube-apiserver, on the host's loopback) reachable at the
    same address from inside ``netns``, so the kubeconfig (and the server certificate's
    address) are the ones the API has. Loopback to loopback: nothing leaves the host."""
    listener = in_netns(netns, lambda: socket.create_server((host, port)))
    conns: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                inner, _ = listener.accept()
            except OSError:
                return
            outer = socket.create_connection((host, port))
            conns.extend((inner, outer))
            for a, b in ((inner, outer), (outer, inner)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        for c in conns:
            c.close()
        thread.join(timeout=5)


def cni_add(
    built: Path,
    ns: Namespaces,
    workdir: Path,
    kubeconfig: Path,
    node: str,
    namespace: str,
    pod: str,
) -> dict[str, object]:
    """Calico's CNI plugin (``calico``, with ``calico-ipam``) ADD for ``pod`` on ``node``,
    run in the node's namespace as the kubelet's container runtime runs it: the veth
    (``cali…`` on the node, ``eth0`` in the pod's namespace), the pod's address from
    Calico's IPAM, the host route and the Pod's address annotations. Its CNI result."""
    workdir.mkdir(parents=True, exist_ok=True)
    container = f"{ns.pod}-{pod}"
    netconf = {
        **cni_netconf(workdir, node, kubeconfig),
        # calico-node's start-up writes /var/lib/calico/nodename, which the plugin checks
        # for; not on this host (the test writes nothing outside its directories).
        "nodename_file_optional": True,
        "mtu": 1500,
    }
    env = cni_add_env(built, container, f"/var/run/netns/{ns.pod}", namespace, pod)
    done = subprocess.run(
        ["ip", "netns", "exec", ns.node, str(built / "bin" / "calico")],
        input=json.dumps(netconf),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, f"calico: {done.stdout}\n{done.stderr}"
    result: dict[str, object] = json.loads(done.stdout)
    return result


FELIX_HEALTH_PORT = 9099  # Felix's default


def felix_env(workdir: Path, kubeconfig: Path, node: str) -> dict[str, str]:
    """calico-node's environment for Felix with a Kubernetes datastore."""
    return {
        "PATH": f"{Path(BIRD1).parent}:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(workdir),
        "DATASTORE_TYPE": "kubernetes",
        "FELIX_DATASTORETYPE": "kubernetes",
        "KUBECONFIG": str(kubeconfig),
        "NODENAME": node,
        "FELIX_FELIXHOSTNAME": node,
        "FELIX_IPV6SUPPORT": "false",
        "FELIX_USAGEREPORTINGENABLED": "false",
        "FELIX_HEALTHENABLED": "true",
        "FELIX_HEALTHPORT": str(FELIX_HEALTH_PORT),
        "FELIX_LOGSEVERITYSCREEN": "info",
        "FELIX_LOGFILEPATH": "none",
        "FELIX_DEFAULTENDPOINTTOHOSTACTION": "ACCEPT",
        # In a fresh namespace "auto" finds no rules and picks legacy iptables; the
        # host's iptables (Debian's, what the nodes get) is the nf_tables one.
        "FELIX_IPTABLESBACKEND": "NFT",
        # calico-node's manifest default is 90 s; a test shows the route put back sooner.
        "FELIX_ROUTEREFRESHINTERVAL": "2",
        "FELIX_ENDPOINTSTATUSPATHPREFIX": str(workdir / "status"),
        # The build has no libbpf (CGO_ENABLED=0, scripts/build-calico.sh): Felix's
        # start-up clean-up of a BPF connect-time load balancer calls its stub and
        # panics ("panic: LIBBPF syscall stub", in nat.RemoveConnectTimeLoadBalancer
        # from NewIntDataplaneDriver). Felix's own switch for its FV tests skips that
        # clean-up; there is no BPF state in a namespace made here to clean.
        "FELIX_DebugSkipCTLBCleanup": "true",
    }


@dataclass
class Felix:
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running_felix(
    built: Path, ns: Namespaces, workdir: Path, kubeconfig: Path, node: str
) -> Iterator[Felix]:
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "felix.log"
    env = felix_env(workdir, kubeconfig, node)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns.node, str(built / "bin" / "calico-node"), "-felix"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=workdir,
        )
    try:
        yield Felix(proc, log, env)
    finally:
        stop(proc)


def wait_ready(built: Path, ns: Namespaces, felix: Felix, timeout: float = 90) -> None:
    """Until ``calico-node -felix-ready`` (the readiness probe of calico-node's pod) says
    Felix is ready; fails with Felix's output if it exits or never is."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if felix.process.poll() is not None:
            raise AssertionError(
                f"Felix exited ({felix.process.returncode}):\n{felix.output()[-6000:]}"
            )
        probe = subprocess.run(
            ["ip", "netns", "exec", ns.node, str(built / "bin" / "calico-node"), "-felix-ready"],
            capture_output=True,
            text=True,
            env=felix.env,
            timeout=30,
        )
        if probe.returncode == 0:
            return
        last = probe.stdout + probe.stderr
        time.sleep(1)
    raise AssertionError(
        f"Felix not ready in {timeout:g} s ({last.strip()}):\n{felix.output()[-6000:]}"
    )


def udp_probe(ns: Namespaces, dst: str, port: int = 7777, timeout: float = 3) -> str | None:
    """One datagram from the pod's namespace to ``dst:port``, where the peer listens:
    the source address the peer saw it from, or None if none arrived."""

    def bound() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((dst, port))
        return s

    server = in_netns(ns.peer, bound)
    client = in_netns(ns.pod, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    with server, client:
        client.sendto(b"felix?", (dst, port))
        server.settimeout(timeout)
        try:
            _, (source, _) = server.recvfrom(64)
        except TimeoutError:
            return None
        return str(source)
