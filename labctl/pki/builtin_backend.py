"""Minting on `cryptography`, shaped to match what cfssl 1.2 produces."""

from __future__ import annotations

import datetime as dt
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from labctl.errors import LabctlError
from labctl.pki.backend import CaMaterial
from labctl.pki.specs import CertSpec

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_CURVES: dict[int, ec.EllipticCurve] = {
    256: ec.SECP256R1(),
    384: ec.SECP384R1(),
    521: ec.SECP521R1(),
}
# cfssl 1.2 sets notBefore = now (to the minute) - 5 min for clock skew, notAfter =
# notBefore + expiry; we do the same so both backends agree.
_BACKDATE = dt.timedelta(minutes=5)
# Key usages as cfssl 1.2 sets them: Cert Sign + CRL Sign for a CA; Digital Signature +
# Key Encipherment for a leaf (meaningless for ECDSA but cfssl adds it).
_CA_USAGE = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
_LEAF_USAGE = x509.KeyUsage(True, False, True, False, False, False, False, False, False)


def generate_key(algo: str, size: int) -> PrivateKey:
    if algo == "ecdsa":
        if size not in _CURVES:
            raise LabctlError(f"unsupported ecdsa key size {size}")
        return ec.generate_private_key(_CURVES[size])
    if algo == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=size)
    raise LabctlError(f"unsupported key algorithm {algo!r}")


def key_pem(key: PrivateKey) -> bytes:
    # PKCS#1 / SEC1 ("EC PRIVATE KEY"), the same encoding cfssl writes.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def subject(spec: CertSpec) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in spec.organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name))
    return x509.Name(attrs)


def _sans(spec: CertSpec) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in spec.dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in spec.ip_addresses]
    return names


def _eku(spec: CertSpec) -> list[x509.ObjectIdentifier]:
    out = []
    if "server auth" in spec.usages:
        out.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if "client auth" in spec.usages:
        out.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    return out


def _builder(spec: CertSpec, issuer: x509.Name, key: PrivateKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    return (
        x509.CertificateBuilder()
        .subject_name(subject(spec))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now - _BACKDATE + dt.timedelta(days=spec.validity_days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )


class BuiltinBackend:
    name = "builtin"

    def mint_ca(self, spec: CertSpec) -> tuple[bytes, bytes]:
        key = generate_key(spec.key_algo, spec.key_size)
        cert = (
            _builder(spec, subject(spec), key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .add_extension(_CA_USAGE, True)
            .sign(key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)

    def mint_cert(self, spec: CertSpec, ca: CaMaterial) -> tuple[bytes, bytes]:
        ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
        ca_key = serialization.load_pem_private_key(ca.key_pem, None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise LabctlError(f"CA key for {spec.name} is neither ECDSA nor RSA")
        key = generate_key(spec.key_algo, spec.key_size)
        if spec.is_intermediate:  # signs leaves only, as cfssl's ca_constraint makes it
            usage, constraints = _CA_USAGE, x509.BasicConstraints(ca=True, path_length=0)
        else:
            usage, constraints = _LEAF_USAGE, x509.BasicConstraints(ca=False, path_length=None)
        b = (
            _builder(spec, ca_cert.subject, key)
            .add_extension(constraints, True)
            .add_extension(usage, True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if eku := _eku(spec):
            b = b.add_extension(x509.ExtendedKeyUsage(eku), False)
        if sans := _sans(spec):
            b = b.add_extension(x509.SubjectAlternativeName(sans), False)
        cert = b.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)
