"""The etcd layer refuses a data_dir change that would leave a member's data behind.

The guard is a shell script the layer runs on each node before it writes etcd's
environment file; here it runs under the real ``sh`` against directories made
for the test.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from labctl.layers.etcd import MOVED_GUARD


def guard(root: Path, new: str) -> subprocess.CompletedProcess[str]:
    env = root / "etc" / "etcd" / "etcd.env"
    return subprocess.run(
        ["sh", "-c", MOVED_GUARD, "labctl-etcd-moved", str(env), str(root), new],
        capture_output=True, text=True, check=False, timeout=10,
    )  # fmt: skip


def ran_from(root: Path, data_dir: str, *, with_data: bool) -> None:
    env = root / "etc" / "etcd" / "etcd.env"
    env.parent.mkdir(parents=True, exist_ok=True)
    env.write_text(f"ETCD_NAME=fohn\nETCD_DATA_DIR={data_dir}\n")
    if with_data:
        (root / data_dir.lstrip("/") / "member").mkdir(parents=True)


def test_data_left_in_the_old_directory_is_refused_with_the_way_out(tmp_path: Path) -> None:
    ran_from(tmp_path, "/var/lib/etcd", with_data=True)
    done = guard(tmp_path, "/srv/etcd")
    assert done.returncode == 3
    assert "etcd's data is in /var/lib/etcd but cluster.etcd.data_dir now says /srv/etcd" in (
        done.stderr
    )
    assert "move /var/lib/etcd to /srv/etcd" in done.stderr


@pytest.mark.parametrize(
    ("old", "with_data", "moved"),
    [
        ("/var/lib/etcd", True, False),  # unchanged: same directory
        ("/var/lib/etcd-old", False, False),  # the old one never held data
        ("/var/lib/etcd-old", True, True),  # the operator moved it already
    ],
)
def test_what_loses_nothing_passes(tmp_path: Path, old: str, with_data: bool, moved: bool) -> None:
    ran_from(tmp_path, old, with_data=with_data)
    if moved:
        (tmp_path / "var" / "lib" / "etcd" / "member").mkdir(parents=True)
    assert guard(tmp_path, "/var/lib/etcd").returncode == 0


def test_a_first_install_passes(tmp_path: Path) -> None:
    assert guard(tmp_path, "/var/lib/etcd").returncode == 0
