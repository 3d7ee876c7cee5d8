"""Each server's SSH host key, minted by labctl before its install, so the first SSH can pin it.

A freshly installed node that makes its own host key on first boot leaves
labctl nothing to check the first connection against: whoever answers on the
node's address first is believed. So labctl mints an ed25519 host key per
server (``.labctl/os/hostkeys/NAME``, private part 0600, never printed), the
boot service plants it through the server's Ignition
(``/etc/ssh/ssh_host_ed25519_key``), and the first SSH after the install
writes the public part into known_hosts *before* connecting: a node showing
any other key is refused. The key is kept across runs (a reinstalled server
keeps its identity); deleting the file mints a new one at the next install.

The private part travels in the Ignition served over plain HTTP on the boot
network while the server installs (docs/os.md says what that protects and
what it does not).

It lives with the boot service, which serves the key; the os layer's work
(``labctl/os/``) uses it from above.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from labctl.errors import LabctlError
from labctl.files import write_atomic

KEY_TYPE = "ssh-ed25519"


@dataclass(frozen=True)
class HostKey:
    """One server's host key: the OpenSSH private file and the public ``type base64``."""

    server: str
    private: str = ""
    public: str = ""

    def __repr__(self) -> str:  # never the private part, even in a traceback
        return f"HostKey({self.server!r}, {self.fingerprint})"

    @property
    def blob(self) -> str:
        return self.public.split()[1]

    @property
    def fingerprint(self) -> str:
        """``SHA256:...`` as ``ssh-keygen -l`` prints it."""
        digest = hashlib.sha256(base64.b64decode(self.blob)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def key_dir(state_dir: Path) -> Path:
    return state_dir / "os" / "hostkeys"


def _paths(state_dir: Path, server: str) -> tuple[Path, Path]:
    private = key_dir(state_dir) / server
    return private, private.with_name(f"{server}.pub")


def load(state_dir: Path, server: str) -> HostKey | None:
    private, public = _paths(state_dir, server)
    try:
        key = HostKey(server, private.read_text(), public.read_text().strip())
    except OSError:
        return None
    parts = key.public.split()
    if len(parts) < 2 or parts[0] != KEY_TYPE:
        raise LabctlError(f"{public}: not an {KEY_TYPE} public key labctl wrote")
    return key


def mint() -> tuple[str, str]:
    """A new ed25519 key: (OpenSSH private file, ``ssh-ed25519 BASE64``)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, public


def ensure(state_dir: Path, server: str) -> HostKey:
    """The server's host key, minted and stored (0600) when it has none yet."""
    found = load(state_dir, server)
    if found is not None:
        return found
    private_text, public_text = mint()
    private, public = _paths(state_dir, server)
    private.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(private, private_text.encode(), 0o600)
    write_atomic(public, f"{public_text} labctl-host-key-{server}\n".encode(), 0o644)
    return HostKey(server, private_text, f"{public_text} labctl-host-key-{server}")
