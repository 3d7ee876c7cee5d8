"""The CLI: exit codes, formats, help texts, exports (golden files)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labctl.cli.main import app
from tests.conftest import FIXTURES, GOLDEN, REFERENCE, ROOT, assert_golden
from tests.labctl_process import run_labctl

runner = CliRunner()
BAD = FIXTURES / "bad"


def labctl(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """The real entry point in a child process (exit codes, no traceback)."""
    return run_labctl(*args, cwd=cwd)


def test_validate_exit_codes() -> None:
    assert labctl("validate", str(REFERENCE)).returncode == 0
    bad = labctl("validate", str(BAD / "mac-duplicate.yaml"))
    assert bad.returncode == 1
    assert "LAB016" in bad.stdout and "Traceback" not in bad.stderr
    missing = labctl("validate", str(REFERENCE), "/nonexistent/inventory.yaml")
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    assert labctl("validate", "--format", "nope").returncode == 2


def test_validate_defaults_to_inventory_yaml_in_cwd() -> None:
    assert labctl("validate").returncode == 0


def test_strict_turns_warnings_into_failure() -> None:
    warned = BAD / "psus-one-pdu.yaml"
    assert labctl("validate", str(warned)).returncode == 0
    assert labctl("validate", "--strict", str(warned)).returncode == 1


def test_validate_json() -> None:
    out = runner.invoke(app, ["validate", "-f", "json", str(BAD / "unknown-switch.yaml")])
    assert out.exit_code == 1
    report = json.loads(out.stdout)
    assert report["valid"] is False
    (problem,) = report["files"][0]["problems"]
    assert problem["check"] == "LAB031"
    assert problem["path"] == "servers[0].nics[1].switch"
    assert isinstance(problem["line"], int)


def test_validate_github_annotations() -> None:
    out = runner.invoke(app, ["validate", "-f", "github", str(BAD / "unknown-port.yaml")])
    assert out.exit_code == 1
    (line,) = out.stdout.splitlines()
    assert line.startswith("::error file=")
    assert ",title=LAB032::" in line
    assert ",line=" in line and ",col=" in line


def test_secrets_never_printed_by_any_format() -> None:
    for fmt in ("text", "json", "github"):
        out = runner.invoke(app, ["validate", "-f", fmt, str(BAD / "literal-secret.yaml")])
        assert "hunter2" not in out.stdout
        out = runner.invoke(app, ["validate", "-f", fmt, str(BAD / "secret-wrong-type.yaml")])
        assert "123456789" not in out.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["init"],
        ["validate"],
        ["schema"],
        ["inventory", "show"],
        ["inventory", "export"],
        ["plan"],
        ["bootstrap"],
        ["power", "status"],
        ["power", "cycle"],
        ["power", "bootdev"],
        ["pki", "mint"],
        ["pki", "check"],
        ["pki", "list"],
        ["pki", "rotate"],
        ["kubeconfig"],
        ["kubernetes", "status"],
        ["completion"],
    ],
)
def test_every_command_help_has_an_example(command: list[str]) -> None:
    out = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert out.exit_code == 0
    assert "Example" in out.stdout


def test_schema_command_prints_the_schema() -> None:
    out = runner.invoke(app, ["schema"])
    assert json.loads(out.stdout) == json.loads(
        (ROOT / "schemas/inventory.schema.json").read_text()
    )


def test_show_tables_and_json() -> None:
    out = runner.invoke(app, ["inventory", "show", "-i", str(REFERENCE)], env={"COLUMNS": "200"})
    assert out.exit_code == 0
    for word in ("fohn", "chequita", "wind", "31.31.164.208/28", "pdu2", "kek-core"):
        assert word in out.stdout
    out = runner.invoke(app, ["inventory", "show", "-i", str(REFERENCE), "-o", "json"])
    assert json.loads(out.stdout)["lab"]["name"] == "sthlm"


def test_show_refuses_an_invalid_inventory_without_traceback() -> None:
    out = labctl("inventory", "show", "-i", str(BAD / "port-twice.yaml"))
    assert out.returncode == 1
    assert "LAB034" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("fmt", ["ansible", "hosts", "json"])
def test_exports_match_golden_files(fmt: str) -> None:
    out = runner.invoke(app, ["inventory", "export", fmt, "-i", str(REFERENCE)])
    assert out.exit_code == 0
    assert_golden(f"export.{fmt}", out.stdout)
    assert "LABCTL_BMC_PASSWORD_FOHN" not in out.stdout or fmt == "json"


def test_export_to_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "hosts"
    target.parent.mkdir()  # --out never creates a missing directory (test_cli_conventions)
    out = runner.invoke(
        app, ["inventory", "export", "hosts", "-i", str(REFERENCE), "--out", str(target)]
    )
    assert out.exit_code == 0
    assert target.read_text() == (GOLDEN / "export.hosts").read_text()
    assert [p.name for p in target.parent.iterdir()] == ["hosts"]  # no temp file left
