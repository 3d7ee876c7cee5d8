"""`labctl pki` end to end on the reference inventory, both backends, via the real entry point."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REFERENCE
from tests.labctl_process import run_labctl

pytestmark = pytest.mark.integration
PASSPHRASE = "pki-cli-test-passphrase"


def labctl(workdir: Path, *args: str, passphrase: str | None = PASSPHRASE) -> tuple[int, str]:
    inventory = str(workdir / "inventory.yaml")
    done = run_labctl(*args, "-i", inventory, env={"LABCTL_CA_PASSPHRASE": passphrase})
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("backend", ["cfssl", "builtin"])
def test_mint_check_list_rotate(tmp_path: Path, backend: str) -> None:
    (tmp_path / "inventory.yaml").write_text(REFERENCE.read_text())
    code, out = labctl(tmp_path, "pki", "mint", "--backend", backend, passphrase=None)
    assert code == 1 and "LABCTL_CA_PASSPHRASE is not set" in out
    assert labctl(tmp_path, "pki", "check")[0] == 1  # nothing minted yet

    code, out = labctl(tmp_path, "pki", "mint", "--backend", backend, "-o", "json")
    assert code == 0, out
    minted = {m["name"] for m in json.loads(out)["minted"]}
    assert {"ca", "etcd-server-fohn", "apiserver", "kubelet-wind", "service-account"} <= minted
    ssl = tmp_path / "ssl"
    assert not (ssl / "ca-key.pem").exists() and (ssl / "ca-key.pem.encrypted").exists()
    assert oct((ssl / "apiserver-key.pem").stat().st_mode & 0o777) == "0o600"

    code, out = labctl(tmp_path, "pki", "mint", "--backend", backend)
    assert code == 0 and "nothing to do" in out
    assert labctl(tmp_path, "pki", "check")[0] == 0

    code, out = labctl(tmp_path, "pki", "list", "-o", "json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["apiserver"]["status"] == "ok"
    assert "31.31.164.220" in rows["apiserver"]["hosts"]

    before = (ssl / "apiserver.pem").read_bytes()
    assert labctl(tmp_path, "pki", "rotate", "apiserver")[0] == 2  # no terminal, no --yes
    code, out = labctl(tmp_path, "pki", "rotate", "apiserver", "--yes", "--backend", backend)
    assert code == 0 and "re-minted apiserver" in out
    assert (ssl / "apiserver.pem").read_bytes() != before
    code, out = labctl(tmp_path, "pki", "rotate", "--yes", passphrase="wrong-passphrase")
    assert code == 1 and "wrong passphrase" in out and "wrong-passphrase" not in out


def test_inventory_change_is_noticed(tmp_path: Path) -> None:
    (tmp_path / "inventory.yaml").write_text(REFERENCE.read_text())
    assert labctl(tmp_path, "pki", "mint", "--backend", "builtin")[0] == 0
    moved = REFERENCE.read_text()
    moved = moved.replace("31.31.164.222}", "31.31.164.219}")  # wind gets a new public address
    (tmp_path / "inventory.yaml").write_text(moved)
    code, out = labctl(tmp_path, "pki", "check")
    assert code == 1 and "kubelet-wind" in out and "etcd-server-wind" in out
    code, out = labctl(tmp_path, "pki", "mint", "--backend", "builtin", "-o", "json")
    names = {m["name"] for m in json.loads(out)["minted"]}
    assert "kubelet-wind" in names and "kubelet-fohn" not in names


def test_a_passphrase_shorter_than_12_characters_is_refused_and_nothing_written(
    tmp_path: Path,
) -> None:
    (tmp_path / "inventory.yaml").write_text(REFERENCE.read_text())
    for command in (["mint", "--backend", "builtin"], ["check"]):
        code, out = labctl(tmp_path, "pki", *command, passphrase="eleven-char")
        assert code == 1, out
        assert (
            "cluster.pki.passphrase: the passphrase in environment variable "
            "LABCTL_CA_PASSPHRASE is shorter than 12 characters" in out
        ), out
        assert "eleven-char" not in out
        assert not (tmp_path / "ssl").exists()
    code, out = labctl(tmp_path, "pki", "mint", "--backend", "builtin", passphrase="twelve-chars")
    assert code == 0, out


def test_pki_check_opens_the_ca_keys_with_the_passphrase(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import (
        BestAvailableEncryption,
        Encoding,
        PrivateFormat,
        load_pem_private_key,
    )

    (tmp_path / "inventory.yaml").write_text(REFERENCE.read_text())
    assert labctl(tmp_path, "pki", "mint", "--backend", "builtin")[0] == 0
    ca_key = tmp_path / "ssl" / "ca-key.pem.encrypted"
    code, out = labctl(tmp_path, "pki", "check", passphrase="another-long-passphrase")
    assert code == 1, out
    assert f"the passphrase does not open {ca_key}" in out
    assert "all certificates valid" not in out and "another-long-passphrase" not in out
    code, out = labctl(tmp_path, "pki", "check", passphrase=None)
    assert code == 1 and "LABCTL_CA_PASSPHRASE is not set" in out
    assert labctl(tmp_path, "pki", "check")[0] == 0

    # A key sealed as labctl sealed it before (2,048 rounds): check says so, mint re-seals.
    key = load_pem_private_key(ca_key.read_bytes(), PASSPHRASE.encode())
    sealed = BestAvailableEncryption(PASSPHRASE.encode())
    ca_key.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, sealed))
    code, out = labctl(tmp_path, "pki", "check")
    assert code == 1 and "ca: its key is sealed with PBKDF2-HMAC-SHA256 at 2,048 rounds" in out
    code, out = labctl(tmp_path, "pki", "mint", "--backend", "builtin")
    assert code == 0 and "re-sealed ca-key.pem.encrypted" in out and "minted" not in out, out
    assert labctl(tmp_path, "pki", "check")[0] == 0


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )


def test_a_lab_repository_keeps_every_private_key_and_etcd_snapshot_out_of_git(
    tmp_path: Path,
) -> None:
    """The layout docs/pki.md recommends: inventory.yaml, ssl/, etcd-snapshots/ in one repo."""
    from labctl.ceph.keys import FILENAME as CEPH_KEYS
    from labctl.etcd.snapshots import SnapshotEntry, SnapshotIndex

    assert git(tmp_path, "init", "-q").returncode == 0
    (tmp_path / "inventory.yaml").write_text(REFERENCE.read_text())
    assert labctl(tmp_path, "pki", "mint", "--backend", "builtin")[0] == 0
    ssl = tmp_path / "ssl"
    (ssl / CEPH_KEYS).write_bytes(b"sealed")  # as the ceph layer leaves it beside the PKI
    (ssl / ".apiserver-key.pem.x1y2.tmp").write_bytes(b"a write cut short")
    snapshots = tmp_path / "etcd-snapshots"
    index = SnapshotIndex(snapshots, [])
    snapshots.mkdir()
    (snapshots / "etcd-20261206T140000Z.db").write_bytes(b"every secret in the cluster")
    index.add(SnapshotEntry("etcd-20261206T140000Z.db", 27, "0" * 64, "fohn", "test", "now"), 5)
    index.save()

    secret = [
        *ssl.glob("*-key.pem"),
        *ssl.glob("*.encrypted"),
        *ssl.glob("*.key"),
        *ssl.glob(".*.tmp"),
        *snapshots.iterdir(),
    ]
    names = {p.name for p in secret}
    assert {"ca-key.pem.encrypted", "front-proxy-ca-key.pem.encrypted", CEPH_KEYS} <= names
    assert {"apiserver-key.pem", "cluster-signing-ca-key.pem", "service-account.key"} <= names
    assert {"index.json", "etcd-20261206T140000Z.db"} <= names
    for path in secret:
        assert git(tmp_path, "check-ignore", "-q", str(path)).returncode == 0, path
    assert git(tmp_path, "add", "-A").returncode == 0
    tracked = set(git(tmp_path, "ls-files").stdout.split())
    assert not {str(p.relative_to(tmp_path)) for p in secret} & tracked
    # What the lab commits is still committed.
    wanted = {"inventory.yaml", "ssl/ca.pem", "ssl/apiserver.pem", "ssl/apiserver.json"}
    assert wanted | {"ssl/ca-config.json", "ssl/service-account.pub", "ssl/.gitignore"} <= tracked


def test_the_projects_own_checkout_tracks_no_etcd_snapshot_index() -> None:
    from tests.conftest import ROOT

    listed = git(ROOT, "ls-files", "--error-unmatch", "etcd-snapshots")
    assert listed.returncode != 0, listed.stdout  # nothing under etcd-snapshots/ is tracked
    assert "did not match any file" in listed.stderr, listed.stderr
    assert git(ROOT, "check-ignore", "-q", "etcd-snapshots/index.json").returncode == 0
