"""`labctl init`: a starter inventory that validates as written, for every choice it offers,
with no version field anywhere, comments from the schema, and no file overwritten unasked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from labctl.cli.main import app
from labctl.inventory.schema import schema
from tests.labctl_process import run_labctl

runner = CliRunner()
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA7Zm/uln6fI+xWXc3DWjjQP5CKCNwAOqb+WjdcUL623 op@lab"
OSES = ("flatcar", "fcos")
PDUS = ("apc-rpdu", "apc-rpdu2", "digipower-swh", "none")
SWITCHES = ("frr", "eos", "ios", "none")
# Every choice of each flag with 1, 3 and 5 servers.
CASES = [(n, OSES[k % 2], PDUS[k], SWITCHES[(k + n) % 4]) for n in (1, 3, 5) for k in range(4)]


def _init(tmp_path: Path, *args: str) -> Path:
    tmp_path.mkdir(exist_ok=True)
    key = tmp_path / "id.pub"
    key.write_text(KEY + "\n")
    out = tmp_path / "lab.yaml"
    result = runner.invoke(app, ["init", "--output", str(out), "--ssh-key", str(key), *args])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize(("servers", "os", "pdu", "switch"), CASES)
def test_init_validates_and_plans(
    tmp_path: Path, servers: int, os: str, pdu: str, switch: str
) -> None:
    path = _init(
        tmp_path,
        *("--servers", str(servers), "--os", os),
        *("--pdu-profile", pdu, "--switch-platform", switch),
    )
    text = path.read_text()
    # No version field: only the format's own and SNMP's (a protocol, not a release).
    versions = re.findall(r"^\s*version: (.*)$", text, re.M)
    assert set(versions) <= {"1", "'3'"}, versions
    data = yaml.safe_load(text)
    assert len(data["servers"]) == servers
    assert ("pdus" in data) == (pdu != "none") and ("switches" in data) == (switch != "none")
    checked = runner.invoke(app, ["validate", str(path)])
    assert checked.exit_code == 0, checked.output
    if servers >= 3:  # one server cannot keep quorum: the two warnings say so
        assert "0 warning(s)" in checked.output, checked.output
    plan = runner.invoke(
        app, ["plan", "pki", "-i", str(path), "--state-dir", str(tmp_path / "state")]
    )
    assert plan.exit_code == 0, plan.output


def test_named_servers_and_comments_from_the_schema(tmp_path: Path) -> None:
    path = _init(tmp_path, *(arg for n in ("ada", "bob", "cyd", "dan") for arg in ("--server", n)))
    text = path.read_text()
    assert [s["name"] for s in yaml.safe_load(text)["servers"]] == ["ada", "bob", "cyd", "dan"]
    fsid = schema()["$defs"]["cluster"]["properties"]["ceph"]["properties"]["fsid"]
    assert "# Cluster UUID, lowercase, made once for the lab and never changed:" in text
    assert "uuidgen" in fsid["description"] and "# `python3 -c 'import uuid;" in text
    assert "# Host name, unique in the lab." in text
    assert text.count("# Host name, unique in the lab.") == 1  # first occurrence only


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "lab.yaml"
    out.write_text("mine\n")
    refused = run_labctl("init", "--output", str(out), cwd=tmp_path)
    assert refused.returncode == 2
    assert "exists" in refused.stderr and "--force" in refused.stderr
    assert out.read_text() == "mine\n"
    forced = runner.invoke(app, ["init", "--output", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert yaml.safe_load(out.read_text())["version"] == 1


def test_stdout_and_refusals_write_nothing(tmp_path: Path) -> None:
    printed = runner.invoke(app, ["init", "--output", "-", "--servers", "2"])
    assert printed.exit_code == 0
    assert len(yaml.safe_load(printed.stdout)["servers"]) == 2
    for args in (
        ["--server", "Bad_Name"],
        ["--servers", "2", "--server", "ada"],
        ["--servers", "0"],
        ["--public-cidr", "192.0.2.0/29", "--servers", "3"],
        ["--calico-manifest", "https://example.net/calico.yaml"],
    ):
        out = tmp_path / "lab.yaml"
        result = run_labctl("init", "--output", str(out), *args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith(("labctl: ", str(out))), result.stderr
        assert not out.exists(), args
    missing = run_labctl("init", "--output", str(tmp_path / "no" / "lab.yaml"), cwd=tmp_path)
    assert missing.returncode == 2 and not (tmp_path / "no").exists()


def test_a_real_lab_is_told_to_name_calicos_manifest(tmp_path: Path) -> None:
    """Without --calico-manifest a real lab is refused (LAB120) by a sentence that says what
    to write, and names no version the file does not have."""
    path = _init(tmp_path)
    real = runner.invoke(app, ["validate", "--lab", "real", str(path)])
    assert real.exit_code == 1
    assert "LAB120" in real.output and "None" not in real.output, real.output
    named = _init(
        tmp_path / "named",
        *("--calico-manifest", "https://example.net/calico.yaml", "--calico-sha256", "0" * 64),
    )
    assert runner.invoke(app, ["validate", "--lab", "real", str(named)]).exit_code == 0


def test_the_closing_words_name_every_secret_variable_the_file_reads(tmp_path: Path) -> None:
    """A newcomer learns which variables to export before `sim up` from init itself."""
    out = tmp_path / "lab.yaml"
    done = run_labctl("init", "--output", str(out), "--os", "fcos", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    named = set(re.findall(r"\{env: ([A-Z0-9_]+)\}", out.read_text()))
    assert named >= {"LABCTL_BMC_PASSWORD", "LABCTL_CA_PASSPHRASE", "LABCTL_PDU_AUTH_KEY"}
    said = done.stderr.split("export the secrets it names:", 1)[1]
    for name in named:
        assert name in said, (name, done.stderr)
