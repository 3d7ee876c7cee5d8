"""The cluster's cephx keys: minted by labctl, kept encrypted at rest beside the lab's PKI.

Ceph authenticates every daemon and client with a shared secret per entity
(``mon.``, ``client.admin``, ``mgr.fohn``, ``osd.3``...). labctl mints them all
before the first monitor exists, so the monitors start with every key already
in their database and no daemon's key is ever fetched from a running cluster.
They live in one file, ``<pki directory>/ceph-keys.json.encrypted``: the JSON
map of entity to key, sealed with AES-GCM under a key derived (scrypt) from the
CA passphrase, as the CA key is sealed under it. Decrypted only in memory:
the ceph layer reads them as the fact ``CephKeys`` (``engine/facts.py``),
gathered (decrypted) once, when the layer reads it after the plan ``ceph: keys``.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Self

from labctl.engine.facts import FactPending
from labctl.errors import LabctlError, SecretError
from labctl.files import write_atomic
from labctl.inventory.model import Inventory
from labctl.secrets.references import resolve_passphrase

if TYPE_CHECKING:
    from labctl.engine.layer import LayerContext

FILENAME = "ceph-keys.json.encrypted"
# Interactive-login strength: a stolen file costs scrypt per guess, a run costs ~50 ms.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


def cephx_key(secret: bytes, created: int) -> str:
    """A key as ``ceph-authtool --gen-print-key`` prints it: type AES, time, 16 bytes."""
    if len(secret) != 16:
        raise ValueError("a cephx secret is 16 bytes")
    return base64.b64encode(struct.pack("<HIIH", 1, created, 0, 16) + secret).decode()


def new_key() -> str:
    return cephx_key(os.urandom(16), int(time.time()))


# A run opens the file twice: the mint step (``ceph.keys``) and the fact's gatherer.
@functools.lru_cache(maxsize=4)
def _aead_key(passphrase: bytes, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase)


def seal(keys: dict[str, str], passphrase: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not passphrase:
        raise SecretError("an empty passphrase cannot protect the Ceph keys")
    salt, nonce = os.urandom(16), os.urandom(12)
    plain = json.dumps(keys, sort_keys=True).encode()
    sealed = AESGCM(_aead_key(passphrase, salt)).encrypt(nonce, plain, FILENAME.encode())
    document = {
        "format": "labctl-ceph-keys/1 scrypt aes-256-gcm",
        "scrypt": {"n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
        "salt": base64.b64encode(salt).decode(),
        "nonce": base64.b64encode(nonce).decode(),
        "sealed": base64.b64encode(sealed).decode(),
    }
    return (json.dumps(document, indent=2) + "\n").encode()


def unseal(data: bytes, passphrase: bytes) -> dict[str, str]:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        document = json.loads(data)
        salt = base64.b64decode(document["salt"])
        nonce = base64.b64decode(document["nonce"])
        sealed = base64.b64decode(document["sealed"])
    except (ValueError, KeyError, TypeError):
        raise LabctlError(f"{FILENAME} is not a labctl Ceph key file") from None
    try:
        plain = AESGCM(_aead_key(passphrase, salt)).decrypt(nonce, sealed, FILENAME.encode())
    except InvalidTag:
        raise SecretError(f"cannot decrypt {FILENAME} (wrong passphrase?)") from None
    keys: dict[str, str] = json.loads(plain)
    return keys


@dataclass
class KeyStore:
    """The sealed key file and the passphrase that opens it."""

    path: Path
    passphrase: bytes

    @classmethod
    def of(cls, inventory: Inventory, base_dir: Path) -> KeyStore:
        pki = inventory.cluster.pki
        if pki is None:
            raise LabctlError(
                "the Ceph keys are kept with the PKI, sealed by its passphrase, but the "
                "inventory has no cluster.pki section"
            )
        root = Path(pki.directory)
        path = (root if root.is_absolute() else base_dir / root) / FILENAME
        secret = resolve_passphrase(
            pki.passphrase, used_at="cluster.pki.passphrase", base_dir=base_dir
        )
        return cls(path, secret)

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> dict[str, str]:
        return unseal(self.path.read_bytes(), self.passphrase) if self.path.exists() else {}

    def save(self, keys: dict[str, str]) -> None:
        write_atomic(self.path, seal(keys, self.passphrase), 0o600)

    def ensure(self, entities: list[str]) -> list[str]:
        """Mint a key for every entity that has none; the ones minted, in order."""
        keys = self.load()
        minted = [e for e in entities if e not in keys]
        if minted:
            keys.update({e: new_key() for e in minted})
            self.save(keys)
        return minted


@dataclass(frozen=True)
class CephKeys:
    """A fact: every entity's cephx key, decrypted (never printed: ``repr`` hides them)."""

    keys: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def as_dict(self) -> dict[str, str]:
        return dict(self.keys)

    @classmethod
    def gather(cls, ctx: LayerContext) -> Self:
        if ctx.inventory.cluster.ceph is None:
            return cls()  # no Ceph: no keys, and no passphrase asked for them
        store = KeyStore.of(ctx.inventory, ctx.base_dir)
        if not store.exists():
            raise FactPending(f"no Ceph keys in {store.path} yet", "ceph: keys")
        return cls(tuple(sorted(store.load().items())))

    def describe(self) -> str:
        return f"{len(self.keys)} Ceph key(s)"
