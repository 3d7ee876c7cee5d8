"""Secrets a run writes to devices: resolved where they are pushed, remembered only sealed.

A plan names the secrets a file holds (``engine/actions.py``: ``SecretUse``, a
reference and where the inventory uses it), never their values, so a printed
plan, its JSON and the journal cannot leak one. The run's ``SecretBox`` is the
one place a value is read: the SSH applier asks it while writing the file, and
the executor asks it for a *sealed* digest of the values a step depends on, so
a restart that follows a file re-runs when a password changes. The seal is
scrypt over the value with a random salt kept in the state directory (0600,
made on first use): the journal never holds a value, nor a plain hash that a
short password could be guessed back from.
"""

from __future__ import annotations

import hashlib
import os
import secrets as random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.errors import SecretError
from labctl.secrets import references as secrets

if TYPE_CHECKING:
    from labctl.engine.actions import SecretUse
    from labctl.inventory.model import SecretRef

SALT_FILE = "secret-salt"
SALT_BYTES = 32
# scrypt's cost: about 16 MiB and tens of milliseconds per value, once per run.
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 16}


def salt_path(state_dir: Path) -> Path:
    return state_dir / SALT_FILE


def _salt(state_dir: Path) -> bytes:
    """The state directory's salt, made (0600, never replaced) the first time it is needed."""
    path = salt_path(state_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        state_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another run made it meanwhile
            return _salt(state_dir)
        with os.fdopen(fd, "wb") as out:
            out.write(random.token_bytes(SALT_BYTES))
        data = path.read_bytes()
    if len(data) != SALT_BYTES:
        raise SecretError(
            f"{path} is not a salt labctl made ({len(data)} bytes, not {SALT_BYTES}); "
            "remove it and labctl makes a new one"
        )
    return data


class SecretBox:
    """Resolves a run's secrets when they are pushed, and seals them for the journal."""

    def __init__(
        self, base_dir: Path, state_dir: Path, environ: Mapping[str, str] | None = None
    ) -> None:
        self.base_dir = base_dir
        self.state_dir = state_dir
        self._environ = environ
        self._values: dict[SecretRef, str] = {}
        self._seals: dict[str, str] = {}

    def value(self, use: SecretUse) -> str:
        """The secret's value (a SecretError naming ``use.used_at`` when it has none)."""
        if use.ref not in self._values:
            self._values[use.ref] = secrets.resolve(
                use.ref, used_at=use.used_at, base_dir=self.base_dir, environ=self._environ
            )
        return self._values[use.ref]

    def lookup(self, uses: Sequence[SecretUse]) -> dict[SecretRef, str]:
        """Every secret in ``uses`` by its reference, for ``Fill.text`` (engine/actions.py)."""
        return {use.ref: self.value(use) for use in uses}

    def seal(self, uses: Sequence[SecretUse]) -> str:
        """A digest that changes when any value does and gives none of them away."""
        if not uses:
            return ""
        salt = _salt(self.state_dir)
        parts = []
        for use in uses:
            value = self.value(use)
            if value not in self._seals:
                derived = hashlib.scrypt(value.encode(), salt=salt, **SCRYPT)
                self._seals[value] = derived.hex()
            parts.append(self._seals[value])
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]
