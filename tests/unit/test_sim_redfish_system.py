"""The simulated Redfish BMC's driver: which chassis power changes a ResetType makes, and
the chassis read the same way chassis.sh (ipmi_sim's read path) reads it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sushy_tools import error

from labctl.sim import chassis
from labctl.sim.redfish_bmc import RedfishBmcSpec, render_config
from labctl.sim.redfish_system import FROM_REDFISH, TO_REDFISH, power_steps
from tests.unit.test_chassis_script import get


@pytest.mark.parametrize(
    ("reset", "on", "steps"),
    [
        ("On", False, [True]),
        ("On", True, []),
        ("ForceOff", True, [False]),
        ("ForceOff", False, []),
        ("GracefulShutdown", True, [False]),
        ("ForceRestart", True, [False, True]),
        ("ForceRestart", False, [True]),
        ("PowerCycle", True, [False, True]),
        ("PushPowerButton", True, [False]),
        ("PushPowerButton", False, [True]),
    ],
)
def test_reset_types_become_chassis_power_changes(reset: str, on: bool, steps: list[bool]) -> None:
    assert power_steps(reset, on) == steps


def test_an_unsupported_reset_is_refused_not_ignored() -> None:
    with pytest.raises(error.NotSupportedError):
        power_steps("Nmi", True)


def test_boot_targets_cover_the_chassis_boot_devices() -> None:
    assert set(TO_REDFISH) == set(chassis.BOOT_NAMES.values())
    assert all(FROM_REDFISH[TO_REDFISH[name]] == name for name in TO_REDFISH)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def test_powered_reads_the_chassis_as_chassis_sh_does(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    def both() -> tuple[bool, str]:
        return chassis.powered(tmp_path), get(tmp_path, "power").stdout

    assert both() == (False, "power:0\n")  # nothing set
    (tmp_path / "power").write_text("on\n")
    assert both() == (True, "power:1\n")  # no pid file: the state last set
    pidfile = tmp_path / "node.pid"
    chassis.prepare(tmp_path, ("true",), ("true",), pidfile, initially_on=False)
    assert both() == (False, "power:0\n")  # the pid file decides, and there is none
    pidfile.write_text(str(sleeper.pid))
    assert both() == (True, "power:1\n")
    sleeper.kill()
    sleeper.wait()
    assert both() == (False, "power:0\n")


def test_the_emulator_config_holds_no_password(tmp_path: Path) -> None:
    spec = RedfishBmcSpec(
        name="wind", address="10.31.0.13", port=443, scheme="https", username="labctl",
        password="s3cret-bmc", state_dir=tmp_path,
    )  # fmt: skip
    text = render_config(spec)
    assert "s3cret-bmc" not in text and "'name': 'wind'" in text
    assert f"LABCTL_SIM_CHASSIS = {str(tmp_path)!r}" in text
