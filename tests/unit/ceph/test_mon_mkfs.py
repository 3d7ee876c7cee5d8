"""The monitor script's decisions on a store directory, run by sh with stand-ins for Ceph's tools.

A monitor's store is made once; a store of another cluster, or one labctl did not
make, is refused and left as it is (labctl never wipes a monitor).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from labctl.layers.ceph import MON_MKFS

FSID = "1b3f7e94-fae6-4bce-ba6f-0b7c08759200"


def stand_in(path: Path) -> str:
    path.write_text(f'#!/bin/sh\necho "$(basename $0) $*" >> {path.parent}/calls\n')
    path.chmod(0o755)
    return str(path)


def mkfs(tmp_path: Path, store: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    argv = ["sh", "-c", MON_MKFS, "mkfs", stand_in(bin_dir / "ceph-mon"),
            stand_in(bin_dir / "monmaptool"), "fohn", FSID, "/k", str(store),
            "--addv", "fohn", "[v2:31.31.164.220:3300,v1:31.31.164.220:6789]"]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "bin" / "calls"
    return log.read_text().splitlines() if log.exists() else []


def test_a_new_store_is_made_once(tmp_path: Path) -> None:
    store = tmp_path / "mon" / "ceph-fohn"
    assert mkfs(tmp_path, store).returncode == 0
    made = calls(tmp_path)
    assert made[0].startswith(f"monmaptool --create --clobber --fsid {FSID} --addv fohn ")
    assert made[1] == f"ceph-mon --mkfs -i fohn --monmap {store}.labctl-monmap --keyring /k"
    assert (store / "labctl-fsid").read_text().strip() == FSID
    assert mkfs(tmp_path, store).returncode == 0
    assert calls(tmp_path) == made  # nothing again


def test_another_clusters_store_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "mon" / "ceph-fohn"
    store.mkdir(parents=True)
    (store / "labctl-fsid").write_text("00000000-0000-0000-0000-000000000000\n")
    done = mkfs(tmp_path, store)
    assert done.returncode == 3
    assert "of the Ceph cluster 00000000-0000-0000-0000-000000000000, not" in done.stderr
    assert calls(tmp_path) == []


def test_a_store_labctl_did_not_make_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "mon" / "ceph-fohn"
    (store / "store.db").mkdir(parents=True)
    done = mkfs(tmp_path, store)
    assert done.returncode == 3 and "labctl did not make" in done.stderr
    assert calls(tmp_path) == [] and (store / "store.db").is_dir()


def test_the_quorum_wait_names_the_monitors_missing(tmp_path: Path) -> None:
    from labctl.layers.ceph import QUORUM

    ceph = tmp_path / "ceph"
    ceph.write_text('#!/bin/sh\necho \'{"election_epoch":8,"quorum_names":["fohn","chequita"]}\'\n')
    ceph.chmod(0o755)
    argv = ["sh", "-c", QUORUM, "quorum", str(ceph), "0", "fohn", "chequita"]
    assert subprocess.run(argv, capture_output=True, timeout=30).returncode == 0
    done = subprocess.run([*argv, "wind"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "after 0 s, monitors not in quorum: wind" in done.stderr
