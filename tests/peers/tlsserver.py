"""A TLS 1.3 server that demands a client certificate, and a way to meet its refusal late.

Drivers that present labctl's client certificate (etcd, the Kubernetes API) must
say "refused labctl's client certificate" whichever way TLS 1.3 delivers the
refusal: as the server's alert on our first read, or as a reset on our write of the
request with the alert waiting behind it. Which one happens is a race; the tests
need both shapes on demand:

* ``running_tls_server`` starts ``openssl s_server`` (a real TLS stack, not one of
  ours) on loopback, demanding a client certificate signed by a given CA and
  answering any GET with a status page over HTTP/1.0.
* ``refusal_before_request`` makes every new HTTPS connection wait, after its
  handshake, until the server has closed its end (the kernel's TCP state says so),
  so the request is written to a connection the server has already refused: the
  late shape, every time.
"""

from __future__ import annotations

import http.client
import select
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.peers.etcd import free_port, require

# tcpi_state, the first byte of struct tcp_info (include/net/tcp_states.h).
_ESTABLISHED = 1


@dataclass(frozen=True)
class TlsServer:
    addr: str
    port: int

    @property
    def url(self) -> str:
        return f"https://{self.addr}:{self.port}"


@contextmanager
def running_tls_server(
    addr: str, cert: Path, key: Path, client_ca: Path, log: Path
) -> Iterator[TlsServer]:
    """``openssl s_server`` on ``addr``: TLS 1.3 only, a client certificate required and
    verified against ``client_ca``; stopped (by its pid) on the way out."""
    port = free_port(addr)
    argv = [
        require("openssl", "openssl"),
        "s_server",
        "-accept",
        f"{addr}:{port}",
        "-tls1_3",
        "-cert",
        str(cert),
        "-key",
        str(key),
        "-CAfile",
        str(client_ca),
        "-Verify",
        "2",  # a client certificate is required, and checked
        "-verify_return_error",  # a certificate that does not verify ends the handshake
        "-www",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        deadline = time.monotonic() + 10
        while b"ACCEPT" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"openssl s_server did not start: {log.read_text()}")
            time.sleep(0.05)
        yield TlsServer(addr, port)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _server_closed(sock: socket.socket) -> bool:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    state: int = struct.unpack("B", info[:1])[0]
    return state != _ESTABLISHED


def refusal_before_request(monkeypatch: pytest.MonkeyPatch, within: float = 5.0) -> None:
    """Every new HTTPS connection returns from ``connect`` only once the server has
    closed it (reset or FIN), so the request goes out after the refusal."""
    connect = http.client.HTTPSConnection.connect

    def connect_then_wait(self: http.client.HTTPSConnection) -> None:
        connect(self)
        assert self.sock is not None
        deadline = time.monotonic() + within
        while not _server_closed(self.sock):
            if time.monotonic() > deadline:
                raise AssertionError(f"the server kept the connection open for {within:g} s")
            select.select([self.sock], [], [], 0.01)

    monkeypatch.setattr(http.client.HTTPSConnection, "connect", connect_then_wait)
