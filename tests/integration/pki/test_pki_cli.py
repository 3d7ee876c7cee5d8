"""`labctl pki` end to end on the reference inventory, both backends, via the real entry point."""

from __future__ import annotations

import json
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
