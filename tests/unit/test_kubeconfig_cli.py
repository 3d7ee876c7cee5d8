"""`labctl kubeconfig`: the operator's kubeconfig from the PKI store, written 0600, and
clear sentences (no traceback) when the store or the user is not there."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import yaml

from tests.conftest import REFERENCE
from tests.labctl_process import run_labctl

ENV = {"LABCTL_CA_PASSPHRASE": "unit-ca-passphrase"}


def test_kubeconfig_written_private_with_the_admin_certificate(tmp_path: Path) -> None:
    shutil.copy(REFERENCE, tmp_path / "inventory.yaml")
    missing = run_labctl("kubeconfig", cwd=tmp_path, env=ENV)
    assert missing.returncode == 1 and "run `labctl pki mint`" in missing.stderr
    minted = run_labctl("pki", "mint", "--backend", "builtin", cwd=tmp_path, env=ENV)
    assert minted.returncode == 0, minted.stderr
    target = tmp_path / "kube" / "admin.conf"
    target.parent.mkdir()
    done = run_labctl("kubeconfig", "--write", str(target), cwd=tmp_path, env=ENV)
    assert done.returncode == 0, done.stderr
    assert target.stat().st_mode & 0o777 == 0o600
    config = yaml.safe_load(target.read_text())
    assert config["clusters"][0]["cluster"]["server"] == "https://31.31.164.220:6443"
    assert config["current-context"] == "bluecmd@sthlm"
    cert = base64.b64decode(config["users"][0]["user"]["client-certificate-data"])
    assert cert == (tmp_path / "ssl" / "admin.pem").read_bytes()
    printed = run_labctl("kubeconfig", "--user", "kube-scheduler", cwd=tmp_path, env=ENV)
    assert yaml.safe_load(printed.stdout)["users"][0]["name"] == "system:kube-scheduler"
    unknown = run_labctl("kubeconfig", "--user", "root", cwd=tmp_path, env=ENV)
    assert unknown.returncode == 2  # a usage error, like every wrong argument
    assert "no kubeconfig for 'root'; users are: admin," in unknown.stderr
