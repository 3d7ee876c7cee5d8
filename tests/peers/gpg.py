"""Throw-away GnuPG signers for tests that publish signed install assets.

Each signer is a home of its own with one ed25519 signing key, and a keyring file
holding its public key (what ``labctl boot fetch --keyring`` is given). gpg starts an
agent per home, its sockets in the home where no /run/user/UID exists: the home is a
short directory under /tmp (a socket's path is at most 107 bytes, and pytest-xdist's
worker folder, popen-gwN, made the test directory's S.gpg-agent.browser 108), linked
from the test's directory as ``gnupg-NAME``. ``no_agents_left`` ends each agent by its
home and removes the home when the test is over.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
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
    home = Path(tempfile.mkdtemp(prefix=f"gnupg-{name}-"))  # 0700
    (root / f"gnupg-{name}").symlink_to(home)
    gpg(home, "--quick-gen-key", f"{name} <{name}@labctl.test>", "ed25519", "sign", "never")
    keyring = root / f"{name}.gpg"
    gpg(home, "--output", str(keyring), "--export")
    return home, keyring


@pytest.fixture(autouse=True)
def no_agents_left(tmp_path: Path) -> Iterator[None]:
    """Ends the agent of every signer the test made (autouse where imported)."""
    yield
    for link in tmp_path.glob("gnupg-*"):
        home = link.resolve()
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
        shutil.rmtree(home, ignore_errors=True)
