"""Resolving secret references ({env: NAME} / {file: PATH}) to their values.

Errors name the reference and where the inventory uses it, never the value.
Resolve every secret a command needs before the first packet is sent, so a
missing one fails the run cleanly instead of half-way. A passphrase that seals
keys at rest (the CA keys, the Ceph keys) must also be long enough to resist
guessing offline: ``resolve_passphrase`` refuses one shorter than 12 characters.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from labctl.errors import SecretError
from labctl.inventory.model import SecretRef

MIN_PASSPHRASE_CHARS = 12


def resolve(
    ref: SecretRef,
    *,
    used_at: str,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The secret's value. ``used_at`` (e.g. ``servers[0].bmc.password``) goes in errors."""
    env = os.environ if environ is None else environ
    if ref.env is not None:
        value = env.get(ref.env)
        if value is None:
            raise SecretError(f"{used_at}: environment variable {ref.env} is not set")
        if value == "":
            raise SecretError(f"{used_at}: environment variable {ref.env} is empty")
        return value
    if ref.file is not None:
        path = Path(ref.file)
        if not path.is_absolute():
            path = base_dir / path
        try:
            value = path.read_text(encoding="utf-8").rstrip("\n")
        except FileNotFoundError:
            raise SecretError(f"{used_at}: secret file {path} does not exist") from None
        except OSError as exc:
            raise SecretError(
                f"{used_at}: cannot read secret file {path} ({exc.strerror})"
            ) from None
        except UnicodeDecodeError:
            raise SecretError(f"{used_at}: secret file {path} is not UTF-8 text") from None
        if not value:
            raise SecretError(f"{used_at}: secret file {path} is empty")
        return value
    if ref.literal is not None:
        return ref.literal
    raise SecretError(f"{used_at}: empty secret reference")  # pragma: no cover - schema forbids


def resolve_passphrase(
    ref: SecretRef,
    *,
    used_at: str,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> bytes:
    """A passphrase that seals keys at rest (UTF-8), refused when shorter than 12 characters."""
    value = resolve(ref, used_at=used_at, base_dir=base_dir, environ=environ)
    if len(value) < MIN_PASSPHRASE_CHARS:
        # The sentence gives neither the value nor its length.
        raise SecretError(
            f"{used_at}: the passphrase in {ref.describe()} is shorter than "
            f"{MIN_PASSPHRASE_CHARS} characters; it seals the CA and Ceph keys, which "
            f"anyone holding a copy can try to guess offline: choose one of at least "
            f"{MIN_PASSPHRASE_CHARS} characters"
        )
    return value.encode()
