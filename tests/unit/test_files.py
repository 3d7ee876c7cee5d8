"""labctl.files: a write lands whole or not at all, with its mode from the first byte."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from labctl.files import atomic_writer, write_atomic


def test_a_streamed_write_replaces_the_file_whole(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "snap.db"
    with atomic_writer(out, 0o600) as handle:
        for piece in (b"one ", b"two ", b"three"):
            handle.write(piece)
        # Until the block ends the old name does not exist yet: readers see nothing.
        assert not out.exists()
    assert out.read_bytes() == b"one two three"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    out = tmp_path / "snap.db"
    write_atomic(out, b"old")
    with pytest.raises(RuntimeError), atomic_writer(out) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("the stream broke")
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["snap.db"]
