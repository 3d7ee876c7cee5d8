"""The CA keys' envelope at rest: PKCS#8, PBES2 with PBKDF2-HMAC-SHA256 at 600,000 rounds.

A root CA key lives on the operator's disk only encrypted; whoever copies the file can
guess passphrases offline as fast as the key derivation allows. cryptography's
``BestAvailableEncryption`` seals PKCS#8 with PBKDF2 at 2,048 rounds, and cryptography
50 offers no way to choose the rounds for PKCS#8 (its encryption builder serves only
OpenSSH and PKCS#12). So labctl writes the same standard envelope itself (RFC 8018
PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC) with the rounds OWASP recommends today,
600,000; ``openssl pkey`` and cryptography's own reader open it. It also reads the key
derivation parameters back from a sealed file, without the passphrase, so a key sealed
the old way is found and re-sealed on the next mint. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from labctl.secrets.references import MIN_PASSPHRASE_CHARS

# OWASP Password Storage Cheat Sheet (2023+): PBKDF2-HMAC-SHA256, 600,000 iterations.
ROUNDS = 600_000

PBES2 = "1.2.840.113549.1.5.13"
PBKDF2 = "1.2.840.113549.1.5.12"
SCRYPT = "1.3.6.1.4.1.11591.4.11"
HMAC_SHA1 = "1.2.840.113549.2.7"
HMAC_SHA256 = "1.2.840.113549.2.9"
HMAC_SHA512 = "1.2.840.113549.2.11"
AES256_CBC = "2.16.840.1.101.3.4.1.42"
NAMES = {
    PBES2: "PBES2",
    PBKDF2: "PBKDF2",
    SCRYPT: "scrypt",
    HMAC_SHA1: "HMAC-SHA1",
    HMAC_SHA256: "HMAC-SHA256",
    HMAC_SHA512: "HMAC-SHA512",
    AES256_CBC: "AES-256-CBC",
}
PEM_LABEL = "ENCRYPTED PRIVATE KEY"


@dataclass(frozen=True)
class Envelope:
    """How a sealed key was sealed: the scheme, key derivation, its rounds and cipher."""

    scheme: str
    kdf: str | None = None
    prf: str | None = None
    rounds: int | None = None
    cipher: str | None = None

    @property
    def current(self) -> bool:
        """Sealed at least as strongly as labctl seals today."""
        return (
            self.scheme == PBES2
            and self.kdf == PBKDF2
            and self.prf in (HMAC_SHA256, HMAC_SHA512)
            and (self.rounds or 0) >= ROUNDS
            and self.cipher == AES256_CBC
        )

    def describe(self) -> str:
        if self.scheme != PBES2:
            return f"an encryption scheme labctl does not write ({_name(self.scheme)})"
        if self.kdf == PBKDF2:
            return f"PBKDF2-{_name(self.prf)} at {self.rounds or 0:,} rounds, {_name(self.cipher)}"
        return f"PBES2 with {_name(self.kdf)}, {_name(self.cipher)}"


CURRENT = Envelope(PBES2, PBKDF2, HMAC_SHA256, ROUNDS, AES256_CBC)


def _name(oid: str | None) -> str:
    return NAMES.get(oid or "", oid or "none")


def seal(key_pem: bytes, passphrase: bytes, rounds: int = ROUNDS) -> bytes:
    """``key_pem`` (any private key PEM cryptography reads) as an encrypted PKCS#8 PEM."""
    if len(passphrase.decode("utf-8", "replace")) < MIN_PASSPHRASE_CHARS:
        raise ValueError(f"a passphrase shorter than {MIN_PASSPHRASE_CHARS} characters")
    key = serialization.load_pem_private_key(key_pem, None)
    plain = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    salt, iv = os.urandom(16), os.urandom(16)
    derived = PBKDF2HMAC(hashes.SHA256(), 32, salt, rounds).derive(passphrase)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(derived), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    der = _seq(
        _seq(
            _oid(PBES2),
            _seq(
                _seq(
                    _oid(PBKDF2),
                    _seq(
                        _tlv(0x04, salt),
                        _int(rounds),
                        _seq(_oid(HMAC_SHA256), b"\x05\x00"),
                    ),
                ),
                _seq(_oid(AES256_CBC), _tlv(0x04, iv)),
            ),
        ),
        _tlv(0x04, encrypted),
    )
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join(
        [f"-----BEGIN {PEM_LABEL}-----", *lines, f"-----END {PEM_LABEL}-----", ""]
    ).encode()


def envelope(pem: bytes) -> Envelope:
    """How ``pem`` (an ENCRYPTED PRIVATE KEY) is sealed; ValueError when it is not one."""
    text = pem.decode("ascii", "replace")
    begin, end = f"-----BEGIN {PEM_LABEL}-----", f"-----END {PEM_LABEL}-----"
    if begin not in text or end not in text:
        raise ValueError("not an encrypted PKCS#8 private key")
    body = text.split(begin, 1)[1].split(end, 1)[0]
    try:
        der = base64.b64decode("".join(body.split()), validate=True)
    except ValueError as e:
        raise ValueError("its PEM body is not base64") from e
    try:
        return _envelope(der)
    except IndexError as e:
        raise ValueError("a truncated encryption header") from e


def _envelope(der: bytes) -> Envelope:
    info = _children(_expect(der, 0x30))
    algorithm = _children(_expect(info[0], 0x30))
    scheme = _oid_text(_expect(algorithm[0], 0x06))
    if scheme != PBES2:
        return Envelope(scheme)
    schemes = _children(_expect(algorithm[1], 0x30))
    kdf_part, cipher_part = (_children(_expect(p, 0x30)) for p in schemes[:2])
    kdf = _oid_text(_expect(kdf_part[0], 0x06))
    cipher = _oid_text(_expect(cipher_part[0], 0x06))
    if kdf != PBKDF2:
        return Envelope(scheme, kdf, cipher=cipher)
    params = _children(_expect(kdf_part[1], 0x30))
    rounds = int.from_bytes(_expect(params[1], 0x02), "big")
    prf = HMAC_SHA1  # RFC 8018's default when the prf is left out
    for extra in params[2:]:
        if extra[0] == 0x30:
            prf = _oid_text(_expect(_children(_expect(extra, 0x30))[0], 0x06))
    return Envelope(scheme, kdf, prf, rounds, cipher)


# -- the little DER this needs -------------------------------------------------


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return _tlv(0x06, bytes(out))


def _oid_text(content: bytes) -> str:
    if not content:
        raise ValueError("an empty object identifier")
    arcs = [content[0] // 40, content[0] % 40]
    value = 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    return ".".join(str(a) for a in arcs)


def _read(data: bytes, pos: int) -> tuple[bytes, int]:
    """The element (tag, length, content) starting at ``pos``, and where the next starts."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    length, head = data[pos + 1], pos + 2
    if length & 0x80:
        size = length & 0x7F
        if not 0 < size <= 4 or head + size > len(data):
            raise ValueError("bad DER length")
        length, head = int.from_bytes(data[head : head + size], "big"), head + size
    if head + length > len(data):
        raise ValueError("truncated DER")
    return data[pos : head + length], head + length


def _content(element: bytes) -> bytes:
    length = element[1]
    return element[2 + (length & 0x7F if length & 0x80 else 0) :]


def _expect(element: bytes, tag: int) -> bytes:
    if not element or element[0] != tag:
        raise ValueError(f"expected DER tag {tag:#x}")
    return _content(element)


def _children(content: bytes) -> list[bytes]:
    items, pos = [], 0
    while pos < len(content):
        item, pos = _read(content, pos)
        items.append(item)
    return items
