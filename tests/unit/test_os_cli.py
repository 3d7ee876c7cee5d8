"""`labctl os install` refuses what it must before touching anything."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REFERENCE
from tests.labctl_process import run_labctl


def test_reinstall_of_an_unknown_server_is_a_usage_error(tmp_path: Path) -> None:
    done = run_labctl("os", "install", "--reinstall", "nosuch", "-i", str(REFERENCE), cwd=tmp_path)
    assert done.returncode == 2
    assert "--reinstall nosuch: no such server" in done.stderr
    assert "Traceback" not in done.stderr


def test_reinstall_without_a_terminal_needs_yes(tmp_path: Path) -> None:
    done = run_labctl("os", "install", "--reinstall", "fohn", "-i", str(REFERENCE), cwd=tmp_path)
    assert done.returncode == 2
    assert "refusing to reinstall fohn" in done.stderr and "--yes" in done.stderr
    assert not (tmp_path / ".labctl" / "os").exists()  # nothing was looked at or changed


def test_boot_status_without_a_service(tmp_path: Path) -> None:
    done = run_labctl("boot", "status", "-i", str(REFERENCE), "--state-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "not running"
    assert "fohn: no report" in done.stdout
