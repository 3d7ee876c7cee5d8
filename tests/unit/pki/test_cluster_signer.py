"""The cluster signer: its spec, the check of its constraints, its trust bundle, and the
client-CA bundle the API servers get. Pure functions, with certificates the builtin
backend makes in memory."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from labctl.pki.backend import CaMaterial
from labctl.pki.builtin_backend import BuiltinBackend
from labctl.pki.check import cert_problem
from labctl.pki.mint import signer_trust
from labctl.pki.placement import client_ca_bundle
from labctl.pki.specs import CLUSTER_SIGNER, CertSpec, plan_certificates
from tests.pki_sample import sample_input


def now() -> dt.datetime:
    # Read when a test runs, not at import: the whole suite collects this module half
    # an hour before it runs it, and a certificate minted then is judged against now.
    return dt.datetime.now(dt.UTC)


def specs() -> dict[str, CertSpec]:
    return {s.name: s for s in plan_certificates(sample_input())}


def root() -> CaMaterial:
    return CaMaterial(*BuiltinBackend().mint_ca(specs()["ca"]))


def test_the_signer_is_an_intermediate_of_the_root_held_by_the_control_plane() -> None:
    signer = specs()[CLUSTER_SIGNER]
    assert signer.ca == "ca" and signer.is_intermediate and not signer.is_ca
    assert signer.owner_nodes == ("fohn",)  # control plane only: its key signs clients
    assert signer.usages == ("cert sign", "crl sign")
    assert signer.validity_days == sample_input().validity_days  # rotates with leaves


def test_check_wants_a_path_length_0_ca_for_the_signer_and_no_ca_for_a_leaf() -> None:
    ca = root()
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    signer_spec = specs()[CLUSTER_SIGNER]
    good = BuiltinBackend().mint_cert(signer_spec, ca)[0]
    assert cert_problem(signer_spec, x509.load_pem_x509_certificate(good), ca_cert, now()) is None
    # Minted as a leaf (same name, no CA bit): not what the controller-manager can use.
    as_leaf = BuiltinBackend().mint_cert(replace(signer_spec, profile="client"), ca)[0]
    problem = cert_problem(signer_spec, x509.load_pem_x509_certificate(as_leaf), ca_cert, now())
    assert problem == "not a CA limited to signing leaves (CA:TRUE, pathlen:0)"
    # And a leaf's name on a CA certificate is refused the other way round.
    admin = specs()["admin"]
    as_ca = BuiltinBackend().mint_cert(replace(admin, profile="intermediate-ca"), ca)[0]
    problem = cert_problem(admin, x509.load_pem_x509_certificate(as_ca), ca_cert, now())
    assert problem == "a CA certificate where a leaf is wanted"


def test_the_signer_trust_keeps_earlier_signers_of_this_root_until_they_expire() -> None:
    ca, other_root = root(), root()
    signer_spec = specs()[CLUSTER_SIGNER]
    first = BuiltinBackend().mint_cert(signer_spec, ca)[0]
    second = BuiltinBackend().mint_cert(signer_spec, ca)[0]
    foreign = BuiltinBackend().mint_cert(signer_spec, other_root)[0]
    expired = BuiltinBackend().mint_cert(replace(signer_spec, validity_days=0), ca)[0]

    assert signer_trust(first, b"", ca.cert_pem, now()) == first
    trust = signer_trust(second, first + first + expired + foreign, ca.cert_pem, now())
    got = [
        c.public_bytes(serialization.Encoding.PEM) for c in x509.load_pem_x509_certificates(trust)
    ]
    assert got == [second, first]  # new first; once each; expired and foreign gone
    # A new root: none of the old root's signers is kept.
    assert signer_trust(foreign, trust, other_root.cert_pem, now()) == foreign


def test_the_client_ca_bundle_is_root_then_signers() -> None:
    ca, signer, old = b"ROOT\n", b"NEW\n", b"OLD"
    assert client_ca_bundle(ca, signer, signer + old) == b"ROOT\nNEW\nOLD\n"
    # A trust file that lost the current signer (written by hand) still gets it.
    assert client_ca_bundle(ca, signer, old) == b"ROOT\nNEW\nOLD\n"
    assert client_ca_bundle(ca, signer, b"") == b"ROOT\nNEW\n"
