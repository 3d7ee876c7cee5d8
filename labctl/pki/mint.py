"""Minting and rotation: write to the store exactly what the findings ask for, nothing else.

A new CA re-mints every leaf it signed; a new service-account key keeps the
old public keys in the trust bundle, so tokens signed before a rotation keep
validating; a new cluster signer likewise keeps the earlier ones in its bundle, so
certificates the cluster issued before a rotation keep authenticating.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from labctl.pki.backend import Backend, CaMaterial
from labctl.pki.cfssl_json import ca_config, csr_json, dumps
from labctl.pki.check import DEFAULT_THRESHOLD, Finding, check
from labctl.pki.sealing import CURRENT
from labctl.pki.specs import SERVICE_ACCOUNT, PkiInput, plan_certificates
from labctl.pki.store import PkiStore, require_strong


@dataclass
class MintReport:
    minted: list[Finding] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    resealed: list[Finding] = field(default_factory=list)  # CA keys sealed anew, same key


def _new_sa_key() -> tuple[bytes, bytes]:
    # ES256 service-account tokens; kube-apiserver accepts ECDSA signing keys.
    key = ec.generate_private_key(ec.SECP256R1())
    priv = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return priv, pub


def signer_trust(new: bytes, earlier: bytes, root: bytes, now: dt.datetime) -> bytes:
    """The cluster signers' trust bundle after a new signer: the new one first, then each
    earlier one (``earlier``: the old bundle and the replaced certificate) that has not
    expired and that the current root still signed. Pure.

    Certificates the cluster issued before a rotation stay valid until they expire; a new
    root CA withdraws every signer the old one made.
    """
    root_cert = x509.load_pem_x509_certificate(root)
    kept = [new]
    for cert in x509.load_pem_x509_certificates(earlier) if earlier.strip() else []:
        pem = cert.public_bytes(serialization.Encoding.PEM)
        if pem in kept or cert.not_valid_after_utc <= now:
            continue
        try:
            cert.verify_directly_issued_by(root_cert)
        except (ValueError, TypeError, InvalidSignature):
            continue
        kept.append(pem)
    return b"".join(kept)


def _mint(
    inp: PkiInput,
    store: PkiStore,
    backend: Backend,
    passphrase: bytes,
    names: list[Finding],
    now: dt.datetime,
) -> MintReport:
    require_strong(passphrase)
    wanted = {f.name for f in names}
    report = MintReport()
    # Every CA key that stays is opened first, before anything is written: a wrong
    # passphrase fails here, whether or not a leaf needs signing, and leaves the
    # store as it was. A key sealed the old way is sealed anew (the same key).
    ca_material: dict[str, CaMaterial] = {}
    for spec in plan_certificates(inp):
        if spec.is_ca and spec.name not in wanted and store.has_ca_key(spec.name):
            ca_pem = store.read_cert(spec.name)
            assert ca_pem is not None, "check() re-mints a CA whose certificate is missing"
            ca_material[spec.name] = CaMaterial(ca_pem, store.read_ca_key(spec.name, passphrase))
    seals = {name: store.ca_key_envelope(name) for name in ca_material}
    store.ensure()
    for name, sealed in seals.items():
        if not sealed.current:
            store.write_ca_key(name, ca_material[name].key_pem, passphrase)
            reason = f"was {sealed.describe()}, now {CURRENT.describe()}"
            report.resealed.append(Finding(store.ca_key_file(name).name, reason))
    store.write_text("ca-config.json", dumps(ca_config(inp)))
    reminted_cas: set[str] = set()
    for spec in plan_certificates(inp):
        store.write_text(f"{spec.name}.json", dumps(csr_json(spec)))
        # A fresh CA invalidates every leaf it signed, whatever the caller asked for.
        if spec.name not in wanted and not (not spec.is_ca and spec.ca in reminted_cas):
            report.unchanged.append(spec.name)
            continue
        if spec.is_ca:
            cert, key = backend.mint_ca(spec)
            store.write_ca_key(spec.name, key, passphrase)
            store.write_cert(spec.name, cert)
            ca_material[spec.name] = CaMaterial(cert, key)
            reminted_cas.add(spec.name)
        else:
            ca = ca_material.get(spec.ca)
            if ca is None:
                ca_pem = store.read_cert(spec.ca)
                assert ca_pem is not None, "check() re-mints a missing CA first"
                ca = CaMaterial(ca_pem, store.read_ca_key(spec.ca, passphrase))
                ca_material[spec.ca] = ca
            cert, key = backend.mint_cert(spec, ca)
            if spec.is_intermediate:
                earlier = store.read_trust(spec.name) + (store.read_cert(spec.name) or b"")
                store.write_trust(signer_trust(cert, earlier, ca.cert_pem, now), spec.name)
            store.write_key(spec.name, key)
            store.write_cert(spec.name, cert)
            if spec.name not in wanted:
                names = [*names, Finding(spec.name, f"its CA {spec.ca} was re-minted")]
    if SERVICE_ACCOUNT in wanted:
        old = store.read_sa_public()
        priv, pub = _new_sa_key()
        # Trust bundle = new key + every old one, so tokens signed before a rotation
        # keep validating and pods need no restart.
        trust = store.read_trust()
        if old and old not in trust:
            trust += old
        store.write_sa(priv, pub)
        store.write_trust(pub + trust)
    else:
        report.unchanged.append(SERVICE_ACCOUNT)
    report.minted = list(names)
    return report


def mint_all(
    inp: PkiInput,
    store: PkiStore,
    backend: Backend,
    passphrase: bytes,
    now: dt.datetime,
    threshold: dt.timedelta = DEFAULT_THRESHOLD,
) -> MintReport:
    """Mint only what check() finds; a second run mints nothing."""
    return _mint(inp, store, backend, passphrase, check(inp, store, now, threshold), now)


def rotate(
    inp: PkiInput,
    store: PkiStore,
    backend: Backend,
    passphrase: bytes,
    now: dt.datetime,
    only: str | None = None,
    include_cas: bool = False,
) -> MintReport:
    """Re-mint every leaf cert and the SA key (or just `only`).

    CAs are kept unless asked for: a new CA means redistributing trust everywhere.
    """
    names = [s.name for s in plan_certificates(inp) if include_cas or not s.is_ca]
    names.append(SERVICE_ACCOUNT)
    if only is not None:
        if only not in names and only not in {s.name for s in plan_certificates(inp)}:
            from labctl.errors import UsageError

            raise UsageError(f"no certificate named {only!r}")
        names = [only]
    # Anything else that check() finds broken is fixed in the same pass.
    extra = [f for f in check(inp, store, now) if f.name not in names]
    findings = [Finding(n, "rotation") for n in names] + extra
    return _mint(inp, store, backend, passphrase, findings, now)
