"""An inventory too large to check is refused by its size, before it is read.

Checking takes about 42 times a file's size in memory (docs/performance.md), so a file
over the cap must be refused with a sentence, not read first: a sparse 1 GiB file is
refused at once (reading it would take a gigabyte of memory).
"""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from labctl.errors import UsageError
from labctl.inventory import MAX_INVENTORY_BYTES, read_bytes
from tests.labctl_process import run_labctl


def test_a_file_over_the_cap_is_refused_by_its_size_before_it_is_read(tmp_path: Path) -> None:
    huge = tmp_path / "inventory.yaml"
    with huge.open("wb") as handle:
        handle.truncate(2**30)  # sparse: no disk used
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UsageError, match=r"1024 MiB is larger than the 64 MiB labctl reads"):
        read_bytes(huge)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 64 * 1024, f"read {grown_kib} KiB of a file it refuses"


def test_validate_says_so_and_exits_2(tmp_path: Path) -> None:
    huge = tmp_path / "inventory.yaml"
    with huge.open("wb") as handle:
        handle.truncate(MAX_INVENTORY_BYTES + 1)
    done = run_labctl("validate", str(huge))
    assert done.returncode == 2, done.stderr
    assert "is larger than the 64 MiB labctl reads" in done.stderr
    assert "Traceback" not in done.stderr
