"""Every rendered Ignition config passes the real ignition-validate (Debian's ignition 2.14)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from labctl.inventory import require_inventory
from labctl.render import ignition
from tests.conftest import REFERENCE

pytestmark = pytest.mark.integration
VALIDATE = "/usr/bin/ignition-validate"


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VALIDATE, str(path)], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("name", ["fohn", "chequita", "wind"])
def test_reference_configs_validate(tmp_path: Path, name: str) -> None:
    inventory = require_inventory(REFERENCE)
    path = tmp_path / f"{name}.ign"
    path.write_text(ignition.config_text(inventory, inventory.server(name)))
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_config_with_its_host_key_validates(tmp_path: Path) -> None:
    from labctl.boot import hostkeys

    inventory = require_inventory(REFERENCE)
    private, public = hostkeys.mint()
    path = tmp_path / "fohn.ign"
    path.write_text(ignition.config_text(inventory, inventory.server("fohn"), (private, public)))
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_fedora_coreos_config_validates(tmp_path: Path) -> None:
    source = tmp_path / "inventory.yaml"
    source.write_text(
        REFERENCE.read_text().replace(
            "os: {distribution: flatcar, channel: beta}",
            "os: {distribution: fedora-coreos, channel: testing}",
        )
    )
    inventory = require_inventory(source)
    path = tmp_path / "fohn.ign"
    path.write_text(ignition.config_text(inventory, inventory.server("fohn")))
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validate_can_fail(tmp_path: Path) -> None:
    """The check is real: a config the spec forbids (a relative path) is refused."""
    inventory = require_inventory(REFERENCE)
    config = ignition.config_text(inventory, inventory.server("fohn"))
    path = tmp_path / "bad.ign"
    path.write_text(config.replace('"path": "/etc/hostname"', '"path": "etc/hostname"'))
    assert validate(path).returncode != 0


def test_installer_configs_validate(tmp_path: Path) -> None:
    """What Flatcar's live PXE system boots with (its install unit) is valid Ignition too."""
    from labctl.render import boot

    inventory = require_inventory(REFERENCE)
    for server in inventory.servers:
        path = tmp_path / f"install-{server.name}.ign"
        path.write_text(
            boot.installer_config_text(inventory, server, version="3975.2.0", token="ab" * 32)
        )
        result = validate(path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_fedora_coreos_installer_config_validates(tmp_path: Path) -> None:
    """Fedora CoreOS's live system gets labctl's report units and a drop-in: valid too."""
    from labctl.render import boot

    source = tmp_path / "inventory.yaml"
    source.write_text(
        REFERENCE.read_text().replace(
            "os: {distribution: flatcar, channel: alpha}",
            "os: {distribution: fedora-coreos, channel: stable}",
        )
    )
    inventory = require_inventory(source)
    path = tmp_path / "install-wind.ign"
    path.write_text(
        boot.installer_config_text(
            inventory, inventory.server("wind"), version="40.1", token="ab" * 32
        )
    )
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dropins" in path.read_text()
