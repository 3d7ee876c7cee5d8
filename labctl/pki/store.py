"""The committable ssl/ directory, laid out like the reference lab's.

<name>.pem and <name>.json (CSR) and ca-config.json are safe to commit; leaf keys are
<name>-key.pem (0600, git-ignored), and so is the cluster signer's key, which goes to
control-plane nodes; root CA keys exist on disk only encrypted (<ca>-key.pem.encrypted,
PKCS#8 sealed by ``sealing``: PBKDF2-HMAC-SHA256 at 600,000 rounds). The directory gets
a ``.gitignore`` that keeps every private key, encrypted or not, out of the lab's git.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization

from labctl.errors import LabctlError, SecretError
from labctl.files import write_atomic
from labctl.pki import sealing
from labctl.secrets.references import MIN_PASSPHRASE_CHARS

SA = "service-account"
GITIGNORE = """\
# Written by labctl (docs/pki.md): private keys stay out of git, encrypted or not.
# Certificates, CSR JSON, ca-config.json and public keys are meant to be committed.
*-key.pem
*-key.pem.encrypted
*.key
*.encrypted
# a write labctl did not finish (it may hold a key)
.*.tmp
"""


def require_strong(passphrase: bytes) -> None:
    """Refuse a passphrase too short to seal a CA key (before anything is written)."""
    if len(passphrase.decode("utf-8", "replace")) < MIN_PASSPHRASE_CHARS:
        raise SecretError(
            f"a passphrase shorter than {MIN_PASSPHRASE_CHARS} characters cannot protect "
            "the CA keys; choose a longer one"
        )


class PkiStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def ensure(self) -> None:
        """The directory, with a ``.gitignore`` for the keys unless the lab wrote its own."""
        self.root.mkdir(parents=True, exist_ok=True)
        ignore = self.path(".gitignore")
        if not ignore.exists():
            write_atomic(ignore, GITIGNORE.encode())

    def path(self, filename: str) -> Path:
        return self.root / filename

    def client_files(self, name: str, what: str) -> tuple[Path, Path, Path]:
        """The CA, certificate and key labctl talks to a service with as ``name``;
        a sentence naming the missing ones (``what``: "etcd client") when not minted."""
        files = (self.path("ca.pem"), self.path(f"{name}.pem"), self.path(f"{name}-key.pem"))
        missing = [p.name for p in files if not p.exists()]
        if missing:
            raise LabctlError(
                f"no {what} certificate in {self.root} ({', '.join(missing)} missing); "
                "run `labctl pki mint` (or bootstrap's pki layer) first"
            )
        return files

    # certificates and CSR documents (committable)
    def read_cert(self, name: str) -> bytes | None:
        p = self.path(f"{name}.pem")
        return p.read_bytes() if p.exists() else None

    def write_cert(self, name: str, pem: bytes) -> None:
        write_atomic(self.path(f"{name}.pem"), pem)

    def write_text(self, filename: str, text: str) -> None:
        """Write ``filename`` unless it already holds ``text``: a converged mint rewrites
        none of the lab's CSR JSON files (two fsyncs each, 2,000 files at 1,000 servers)."""
        path = self.path(filename)
        data = text.encode()
        try:
            if path.read_bytes() == data:
                return
        except OSError:
            pass  # missing or unreadable: write it
        write_atomic(path, data)

    # leaf keys (0600, never committed)
    def read_key(self, name: str) -> bytes | None:
        p = self.path(f"{name}-key.pem")
        return p.read_bytes() if p.exists() else None

    def write_key(self, name: str, pem: bytes) -> None:
        write_atomic(self.path(f"{name}-key.pem"), pem, 0o600)

    # CA keys: encrypted at rest only
    def has_ca_key(self, name: str) -> bool:
        return self.ca_key_file(name).exists()

    def ca_key_file(self, name: str) -> Path:
        return self.path(f"{name}-key.pem.encrypted")

    def ca_key_envelope(self, name: str) -> sealing.Envelope:
        """How the CA key is sealed (read without the passphrase)."""
        path = self.ca_key_file(name)
        try:
            return sealing.envelope(path.read_bytes())
        except ValueError as e:
            raise SecretError(f"{path} is not an encrypted PKCS#8 key ({e})") from None

    def write_ca_key(self, name: str, key_pem: bytes, passphrase: bytes) -> None:
        require_strong(passphrase)
        write_atomic(self.ca_key_file(name), sealing.seal(key_pem, passphrase), 0o600)

    def read_ca_key(self, name: str, passphrase: bytes) -> bytes:
        """Decrypt into memory; returns a PEM the backends can use."""
        path = self.ca_key_file(name)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), passphrase)
        except (ValueError, TypeError):
            # The message names the file only, never the passphrase.
            raise SecretError(f"the passphrase does not open {path} (wrong passphrase?)") from None
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    # service-account signing key pair and the trust bundle of public keys
    def read_sa_public(self) -> bytes | None:
        p = self.path(f"{SA}.pub")
        return p.read_bytes() if p.exists() else None

    def has_sa_key(self) -> bool:
        return self.path(f"{SA}.key").exists() and self.path(f"{SA}.pub").exists()

    def write_sa(self, key_pem: bytes, pub_pem: bytes) -> None:
        write_atomic(self.path(f"{SA}.key"), key_pem, 0o600)
        write_atomic(self.path(f"{SA}.pub"), pub_pem)

    # trust bundles: <name>.trust.pem, the current public key or certificate first, then
    # the earlier ones still honoured (the service-account keys, the cluster signers)
    def read_trust(self, name: str = SA) -> bytes:
        p = self.path(f"{name}.trust.pem")
        return p.read_bytes() if p.exists() else b""

    def write_trust(self, pem: bytes, name: str = SA) -> None:
        write_atomic(self.path(f"{name}.trust.pem"), pem)
