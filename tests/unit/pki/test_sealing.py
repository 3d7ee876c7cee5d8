"""The CA keys' envelope: what it says it is, that cryptography opens it, and that reading
the parameters of a damaged file gives a ValueError, never another exception."""

from __future__ import annotations

import base64
import contextlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from labctl.pki import sealing

PASS = b"sealing-unit-passphrase"


def key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def test_a_sealed_key_opens_with_the_passphrase_only_and_says_how_it_is_sealed() -> None:
    plain = key_pem()
    sealed = sealing.seal(plain, PASS, rounds=1000)  # few rounds: this tests the format
    assert sealed.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    opened = serialization.load_pem_private_key(sealed, PASS)
    assert opened.public_key() == serialization.load_pem_private_key(plain, None).public_key()
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(sealed, b"not-the-passphrase")
    found = sealing.envelope(sealed)
    assert found == sealing.Envelope(
        sealing.PBES2, sealing.PBKDF2, sealing.HMAC_SHA256, 1000, sealing.AES256_CBC
    )
    assert not found.current  # 1,000 rounds is below today's strength
    assert found.describe() == "PBKDF2-HMAC-SHA256 at 1,000 rounds, AES-256-CBC"


def test_the_default_is_current_and_what_cryptography_writes_is_not() -> None:
    plain = key_pem()
    assert sealing.envelope(sealing.seal(plain, PASS)).current
    old = serialization.load_pem_private_key(plain, None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASS),
    )
    assert sealing.envelope(old).rounds == 2048 and not sealing.envelope(old).current


def test_a_short_passphrase_seals_nothing() -> None:
    with pytest.raises(ValueError, match="shorter than 12"):
        sealing.seal(key_pem(), b"eleven-char")


def test_a_plain_key_is_not_an_envelope() -> None:
    with pytest.raises(ValueError, match="not an encrypted PKCS#8"):
        sealing.envelope(key_pem())


SEALED_DER = base64.b64decode(
    b"".join(sealing.seal(key_pem(), PASS, rounds=1000).splitlines()[1:-1])
)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(SEALED_DER) - 1), st.binary(min_size=1, max_size=8), st.booleans())
def test_a_damaged_envelope_gives_a_value_error(at: int, junk: bytes, cut: bool) -> None:
    der = SEALED_DER[:at] if cut else SEALED_DER[:at] + junk + SEALED_DER[at + len(junk) :]
    pem = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n%s\n-----END ENCRYPTED PRIVATE KEY-----\n"
    with contextlib.suppress(ValueError):  # any other exception fails the test
        sealing.envelope(pem % base64.b64encode(der))
