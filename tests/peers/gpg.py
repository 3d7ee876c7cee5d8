"""Throw-away GnuPG signers for tests that publish signed install assets.

Each signer is a home of its own under the test's directory with one ed25519
signing key, and a keyring file holding its public key (what ``labctl boot fetch
--keyring`` is given). gpg starts an agent per home; ``no_agents_left`` ends each
by its home when the test is over.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def gpg(home: Path, *args: str) -> None:
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--yes", "--pinentry-mode", "loopback",
         "--passphrase", "", *args],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def signer(root: Path, name: str) -> tuple[Path, Path]:
    """A GnuPG home with one signing key, and a keyring holding its public key."""
    home = root / f"gnupg-{name}"
    home.mkdir(mode=0o700)
    gpg(home, "--quick-gen-key", f"{name} <{name}@labctl.test>", "ed25519", "sign", "never")
    keyring = root / f"{name}.gpg"
    gpg(home, "--output", str(keyring), "--export")
    return home, keyring


@pytest.fixture(autouse=True)
def no_agents_left(tmp_path: Path) -> Iterator[None]:
    """Ends the agent of every signer the test made (autouse where imported)."""
    yield
    for home in tmp_path.glob("gnupg-*"):
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
