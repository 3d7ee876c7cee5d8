"""Where a command's ``--out``/``--write`` file goes, refused with a sentence when it cannot.

Every command that writes a file the user named (``inventory export --out``,
``kubeconfig --write``, ``etcd snapshot --out``, ``init --output``) goes through
here, so each wrong destination gets the same sentence and exit code instead of
a traceback: a directory, a parent that is missing (never created silently: a
typo in a path should not become a new directory tree) or is a file, a full
disk. A destination that exists and is not a regular file (``/dev/stdout``, a
FIFO, a device) is written through, never replaced by a renamed temp file.
"""

from __future__ import annotations

import errno
from pathlib import Path

from labctl.errors import LabctlError, UsageError


def check_destination(path: Path, option: str) -> Path:
    """``path`` with ``~`` expanded, or a ``UsageError`` naming ``option`` and what to do."""
    target = path.expanduser()
    if target.is_dir():
        raise UsageError(f"{option} {path} is a directory; name a file in it (e.g. {path / 'out'})")
    parent = target.parent
    if not parent.exists():
        raise UsageError(
            f"{option} {path}: the directory {parent} does not exist; "
            f"create it first (mkdir -p {parent}) or name another file"
        )
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: {parent} is a file, not a directory")
    return target


def write_output(path: Path, content: bytes, option: str, mode: int = 0o644) -> None:
    """Write ``content`` to the user-named ``path`` whole or not at all, or say why not."""
    from labctl.files import write_atomic

    target = check_destination(path, option)
    try:
        if target.exists() and not target.is_file():
            # /dev/stdout, a FIFO, a device: write through it; renaming a temp file
            # over it would replace the device itself.
            with target.open("wb") as handle:
                handle.write(content)
        else:
            write_atomic(target, content, mode)
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            reason += "; free some space or name a file on another disk"
        raise LabctlError(
            f"{option} {path}: could not write it ({reason}); it is unchanged"
        ) from None
