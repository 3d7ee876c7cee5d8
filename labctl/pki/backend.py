"""The one interface both minting backends implement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from labctl.pki.specs import CertSpec


@dataclass(frozen=True)
class CaMaterial:
    """A CA certificate and its plaintext key, held in memory only."""

    cert_pem: bytes
    key_pem: bytes

    def __repr__(self) -> str:  # never leak the key through logs or tracebacks
        return "CaMaterial(<cert>, <key redacted>)"


class Backend(Protocol):
    name: str

    def mint_ca(self, spec: CertSpec) -> tuple[bytes, bytes]:
        """Self-signed CA: (cert_pem, key_pem)."""
        ...

    def mint_cert(self, spec: CertSpec, ca: CaMaterial) -> tuple[bytes, bytes]:
        """Leaf signed by ca: (cert_pem, key_pem)."""
        ...
