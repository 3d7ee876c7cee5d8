"""What needs minting: the wanted specs compared with the store, each finding with a reason.

``check`` reads certificates only (no key is decrypted): ``labctl pki check|list``,
a dry run of the pki layer and minting itself all start from its findings.
``weak_seals`` reads how each CA key is sealed, still without the passphrase;
``key_findings`` opens each CA key with it, so ``labctl pki check`` can tell a wrong
passphrase (which would fail the next mint) from a valid PKI.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from labctl.errors import SecretError
from labctl.pki.sealing import CURRENT
from labctl.pki.specs import SERVICE_ACCOUNT, CertSpec, PkiInput, plan_certificates
from labctl.pki.store import PkiStore

DEFAULT_THRESHOLD = dt.timedelta(days=30)


@dataclass(frozen=True)
class Finding:
    name: str
    reason: str


def cert_problem(
    spec: CertSpec,
    cert: x509.Certificate,
    ca_cert: x509.Certificate | None,
    now: dt.datetime,
    threshold: dt.timedelta = DEFAULT_THRESHOLD,
) -> str | None:
    """Why this on-disk cert no longer satisfies spec, or None. Pure."""
    if cert.not_valid_after_utc - now < threshold:
        return f"expires {cert.not_valid_after_utc:%Y-%m-%d} (within {threshold.days} days)"
    cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if cns != [spec.common_name]:
        return f"common name {cns} != {spec.common_name!r}"
    orgs = sorted(
        str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    )
    if orgs != sorted(spec.organizations):
        return f"organizations {orgs} != {sorted(spec.organizations)}"
    if spec.is_ca:
        return None
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca, path_length = constraints.ca, constraints.path_length
    except x509.ExtensionNotFound:
        is_ca, path_length = False, None
    if spec.is_intermediate and not (is_ca and path_length == 0):
        return "not a CA limited to signing leaves (CA:TRUE, pathlen:0)"
    if not spec.is_intermediate and is_ca:
        return "a CA certificate where a leaf is wanted"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        have = {
            *san.get_values_for_type(x509.DNSName),
            *(str(i) for i in san.get_values_for_type(x509.IPAddress)),
        }
    except x509.ExtensionNotFound:
        have = set()
    if have != set(spec.hosts):
        missing, extra = sorted(set(spec.hosts) - have), sorted(have - set(spec.hosts))
        return f"SANs differ: missing {missing}, extra {extra}"
    try:
        eku = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        eku = set()
    want = set()
    if "server auth" in spec.usages:
        want.add(ExtendedKeyUsageOID.SERVER_AUTH)
    if "client auth" in spec.usages:
        want.add(ExtendedKeyUsageOID.CLIENT_AUTH)
    if eku != want:
        return "extended key usages differ"
    if ca_cert is None:
        return "its CA is missing"
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return "signed by a different CA"
    return None


def check(
    inp: PkiInput, store: PkiStore, now: dt.datetime, threshold: dt.timedelta = DEFAULT_THRESHOLD
) -> list[Finding]:
    """Everything that needs (re)minting, in spec order (CAs first), with a reason."""
    findings: list[Finding] = []
    cas: dict[str, x509.Certificate | None] = {}
    reminted_cas: set[str] = set()
    for spec in plan_certificates(inp):
        pem = store.read_cert(spec.name)
        reason: str | None
        cert = x509.load_pem_x509_certificate(pem) if pem else None
        if cert is None:
            reason = "missing"
        elif spec.is_ca and not store.has_ca_key(spec.name):
            reason = "CA key missing"
        elif not spec.is_ca and store.read_key(spec.name) is None:
            reason = "key missing"
        elif not spec.is_ca and spec.ca in reminted_cas:
            reason = f"its CA {spec.ca} is being re-minted"
        else:
            reason = cert_problem(spec, cert, cas.get(spec.ca), now, threshold)
        if spec.is_ca:
            cas[spec.name] = cert
            if reason:
                reminted_cas.add(spec.name)
        if reason:
            findings.append(Finding(spec.name, reason))
    if not store.has_sa_key():
        findings.append(Finding(SERVICE_ACCOUNT, "missing"))
    return findings


def weak_seals(inp: PkiInput, store: PkiStore) -> list[Finding]:
    """The CA keys sealed more weakly than labctl seals today; mint re-seals them."""
    findings = []
    for spec in plan_certificates(inp):
        if spec.is_ca and store.has_ca_key(spec.name):
            sealed = store.ca_key_envelope(spec.name)
            if not sealed.current:
                findings.append(
                    Finding(
                        spec.name,
                        f"its key is sealed with {sealed.describe()}; "
                        f"`labctl pki mint` re-seals it with {CURRENT.describe()}",
                    )
                )
    return findings


def key_findings(inp: PkiInput, store: PkiStore, passphrase: bytes) -> list[Finding]:
    """Each CA key the passphrase does not open, then each sealed too weakly (decrypts)."""
    findings = []
    for spec in plan_certificates(inp):
        if spec.is_ca and store.has_ca_key(spec.name):
            try:
                store.read_ca_key(spec.name, passphrase)
            except SecretError as e:
                findings.append(Finding(spec.name, str(e)))
    return findings + weak_seals(inp, store)
