"""Local file writes that never leave a half-written file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: Path, content: bytes, mode: int = 0o644) -> None:
    """Temp file in the same directory, fsync, rename: readers never see half a file.

    The mode is set before the first byte is written, so a key is never readable by
    others even for a moment, and the directory is fsynced so the rename survives a
    crash too.
    """
    with atomic_writer(path, mode) as handle:
        handle.write(content)


@contextlib.contextmanager
def atomic_writer(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """``write_atomic`` for content that arrives in pieces (an etcd snapshot stream).

    Whatever is written to the handle lands at ``path`` only if the block ends
    normally; an exception leaves ``path`` as it was and no temp file behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
