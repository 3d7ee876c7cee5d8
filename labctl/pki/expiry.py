"""Each node's certificates' expiry, written where node-exporter's textfile collector reads it.

The alert LabctlCertificateExpiring (``render/monitoring/rules.py``) reads
``labctl_certificate_not_after_seconds``; nothing in Prometheus's reach knows when
labctl's certificates expire but labctl, so the pki layer, as it places a node's
certificates, also writes ``placement.TEXTFILE`` on that node: one sample per
certificate file placed there, labelled with its name and path (no key, no secret),
valued at its notAfter in Unix seconds. A bundle (the client-CA bundle, old signers
kept trusted) counts as its earliest member: it stops serving in full then.

Rendered from the files themselves (the samples are data; ``exposition`` is the one
place they become Prometheus's text format, labels escaped), so it says what the node
holds and changes exactly when they do. The layer writes it with ``PutFile``, which
writes a temporary file beside it and renames it over (``ssh-put.sh``): the collector,
reading only ``*.prom``, never sees half a file. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from cryptography import x509

from labctl.errors import LabctlError
from labctl.pki.placement import TEXTFILE, NodeFile

METRIC = "labctl_certificate_not_after_seconds"
HELP = "When a certificate labctl's pki layer placed on this node expires (notAfter, Unix s)."
PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class Sample:
    certificate: str  # the file's name without .pem: the store's name for it
    path: str  # where the node holds it
    not_after: int  # Unix seconds


def samples(files: Iterable[NodeFile]) -> list[Sample]:
    """One sample per certificate file among ``files`` (keys, public keys and anything
    without a PEM certificate are not certificates), in their order."""
    out = []
    for f in files:
        if f.secret or PEM_CERTIFICATE not in f.content:
            continue
        try:
            certs = x509.load_pem_x509_certificates(f.content)
        except ValueError as exc:
            raise LabctlError(f"{f.path}: not a PEM certificate ({exc})") from exc
        not_after = min(int(c.not_valid_after_utc.timestamp()) for c in certs)
        out.append(Sample(PurePosixPath(f.path).name.removesuffix(".pem"), f.path, not_after))
    return out


def _label(value: str) -> str:
    """A label value in Prometheus's text format: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(found: Iterable[Sample]) -> str:
    """``found`` in Prometheus's text exposition format, one gauge."""
    lines = [f"# HELP {METRIC} {HELP}", f"# TYPE {METRIC} gauge"]
    for s in found:
        labels = f'certificate="{_label(s.certificate)}",path="{_label(s.path)}"'
        lines.append(f"{METRIC}{{{labels}}} {s.not_after}")
    return "\n".join(lines) + "\n"


def textfile(files: Iterable[NodeFile]) -> NodeFile:
    """The file the pki layer writes beside a node's certificates (``placement.TEXTFILE``,
    0644: expiry dates are no secret)."""
    return NodeFile(TEXTFILE, exposition(samples(files)).encode(), 0o644, False)
