"""A refused client certificate, told as one however TLS 1.3 delivers the refusal.

The etcd and Kubernetes API drivers present labctl's client certificate. Under TLS
1.2 a server that refuses it says so during the handshake. Under TLS 1.3 the
client's side of the handshake is done before the server has looked at the
certificate: the server's alert ("bad certificate", "unknown ca") comes after, and
the server then closes the connection. Which of our calls sees it depends on
timing. When the alert is read first, the read fails with it. But Go's TLS server
(etcd's, or a Go front of the API that requires a certificate) closes before it has
read the rest of our flight, so its kernel answers with a reset, and our write of
the request can fail on that reset first (Python reports it as ``SSLEOFError``,
"EOF occurred in violation of protocol"). The alert is still in our socket's
receive queue then: TCP delivers what the server sent before the reset.
``said_before_closing`` reads it, so a refused certificate is classified as one
every time, not as a dropped connection.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from cryptography import x509

# Alerts a TLS server sends when it rejects the client's certificate (OpenSSL's names).
CLIENT_CERT_ALERTS = frozenset(
    {
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    }
)

# How a connection the server cut shows on our side: an EOF without close_notify, or
# the kernel's reset on a write or a read.
_CUT = (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def refused_client_certificate(exc: BaseException) -> str | None:
    """The alert in words ("sslv3 alert bad certificate") when ``exc`` is the server
    refusing our client certificate; None for anything else."""
    if isinstance(exc, ssl.SSLError) and exc.reason in CLIENT_CERT_ALERTS:
        return exc.reason.lower().replace("_", " ")
    return None


def issuer_of(cert: Path) -> str:
    """Who signed the certificate in ``cert`` (its issuer's name), for the message that
    says it was refused: a certificate from another lab's CA shows at a glance."""
    try:
        return x509.load_pem_x509_certificate(Path(cert).read_bytes()).issuer.rfc4514_string()
    except (OSError, ValueError):
        return "an issuer labctl cannot read"


def said_before_closing(sock: socket.socket | None, exc: BaseException) -> BaseException:
    """What the server sent before it cut a fresh connection: its alert, when ``exc``
    (an EOF or reset on our first write or read) hides one; otherwise ``exc``.

    Only for a connection that has carried no answer yet: on a kept connection an EOF
    is a server that closed it in the meantime. The read is bounded by the socket's
    timeout but does not wait in practice: the EOF or reset came after the alert, so
    the alert, if there was one, has already arrived.
    """
    if not isinstance(exc, _CUT) or not isinstance(sock, ssl.SSLSocket):
        return exc
    try:
        sock.recv(1)
    except ssl.SSLError as said:
        if refused_client_certificate(said):
            return said
    except (OSError, ValueError):
        pass  # a reset with nothing before it, or a socket already closed
    return exc
