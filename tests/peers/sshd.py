"""A real OpenSSH sshd on loopback for driver tests: its own config, keys and port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.drivers.ssh import SshTarget
from labctl.sim.lab import sshd_config
from labctl.targets import SshConnector

SSHD = "/usr/sbin/sshd"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class SshdPeer:
    host: str
    port: int
    known_hosts: Path
    client_key: Path
    host_key: Path
    pid: int


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )


@contextmanager
def running_sshd(workdir: Path, host: str = "127.0.0.1") -> Iterator[SshdPeer]:
    """Start sshd (as root, key login for root only) and stop it by pid afterwards."""
    if not Path(SSHD).exists():
        raise RuntimeError(f"{SSHD} is missing: install openssh-server (scripts/setup.sh does)")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege-separation dir sshd wants
    workdir.mkdir(parents=True, exist_ok=True)
    host_key, client_key = workdir / "host_ed25519", workdir / "client_ed25519"
    _keygen(host_key)
    _keygen(client_key)
    authorized = workdir / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    authorized.chmod(0o600)
    port = free_port(host)
    config = workdir / "sshd_config"
    config.write_text(
        sshd_config([f"{host}:{port}"], str(host_key), str(authorized), str(workdir / "sshd.pid"))
    )
    known_hosts = workdir / "known_hosts"
    public = host_key.with_suffix(".pub").read_text().split()
    known_hosts.write_text(f"[{host}]:{port} {public[0]} {public[1]}\n")
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"sshd exited: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            with socket.socket() as s:
                if s.connect_ex((host, port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("sshd did not listen within 10 s")
            time.sleep(0.02)
        yield SshdPeer(host, port, known_hosts, client_key, host_key, proc.pid)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def ssh_target(peer: SshdPeer, name: str, **changes: Any) -> SshTarget:
    """labctl's SSH target for ``peer`` under the node name ``name`` (its host key
    pinned, the client key), with ``changes`` to any other field."""
    return SshTarget(
        **{
            "name": name,
            "host": peer.host,
            "port": peer.port,
            "known_hosts": peer.known_hosts,
            "identity_file": peer.client_key,
            **changes,
        }
    )


def connector(peer: SshdPeer) -> SshConnector:
    """Every host name reaches ``peer`` (one sshd stands in for each node of a plan)."""
    return SshConnector(lambda host: ssh_target(peer, host))
