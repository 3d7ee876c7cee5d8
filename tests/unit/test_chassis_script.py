"""chassis.sh, the simulated BMC's read path, run by the real /bin/sh."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.sim.bmc import CHASSIS_SCRIPT


def get(state: Path, *parms: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(CHASSIS_SCRIPT), str(state), sys.executable, "get", *parms],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def test_power_follows_the_nodes_pid_file(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    pidfile = tmp_path / "node.pid"
    (tmp_path / "status_pidfile").write_text(f"{pidfile}\n")
    (tmp_path / "power").write_text("on\n")  # ignored: the pid file decides
    assert get(tmp_path, "power").stdout == "power:0\n"  # no pid file yet
    pidfile.write_text(str(sleeper.pid))  # as the simulated node writes it: no newline
    assert get(tmp_path, "power").stdout == "power:1\n"
    pidfile.write_text(f"{sleeper.pid}\n")
    assert get(tmp_path, "power").stdout == "power:1\n"
    sleeper.kill()
    sleeper.wait()  # reaped: the pid names nothing now
    assert get(tmp_path, "power").stdout == "power:0\n"


def test_zombie_counts_as_off(tmp_path: Path) -> None:
    # The child exits at once and is not reaped while we look: a zombie.
    process = subprocess.Popen(["true"])
    try:
        for _ in range(100):
            stat = Path(f"/proc/{process.pid}/stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                break
            subprocess.run(["sleep", "0.01"], check=True)
        (tmp_path / "pid").write_text(str(process.pid))
        (tmp_path / "status_pidfile").write_text(str(tmp_path / "pid"))
        assert get(tmp_path, "power").stdout == "power:0\n"
    finally:
        process.wait()


def test_without_a_pid_file_the_last_set_state_answers(tmp_path: Path) -> None:
    assert get(tmp_path, "power").stdout == "power:0\n"  # never set
    (tmp_path / "power").write_text("off\n")
    assert get(tmp_path, "power").stdout == "power:0\n"
    (tmp_path / "power").write_text("on")
    assert get(tmp_path, "power").stdout == "power:1\n"


@pytest.mark.parametrize(
    ("stored", "answer"),
    [(None, "default"), ("pxe", "pxe"), ("disk", "default"), ("bios", "bios"), ("none", "none")],
)
def test_boot_device_reads_back_in_ipmi_sims_words(
    tmp_path: Path, stored: str | None, answer: str
) -> None:
    if stored:
        (tmp_path / "bootdev").write_text(stored)
    assert get(tmp_path, "boot").stdout == f"boot:{answer}\n"


def test_every_read_is_logged_and_unknown_parameters_fail(tmp_path: Path) -> None:
    (tmp_path / "power").write_text("on\n")
    assert get(tmp_path, "power", "boot").stdout == "power:1\nboot:default\n"
    bad = get(tmp_path, "fan")
    assert bad.returncode == 1 and "Invalid parameter: fan" in bad.stdout
    log = (tmp_path / "chassis.log").read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in log] == ["get power boot", "get fan"]


def set_(state: Path, *parms: str) -> subprocess.CompletedProcess[str]:
    """A change, as ipmi_sim hands it to chassis.sh (which passes it to labctl.sim.chassis)."""
    return subprocess.run(
        ["/bin/sh", str(CHASSIS_SCRIPT), str(state), sys.executable, "set", *parms],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_a_chassis_told_to_ignore_soft_off_stays_on_and_a_hard_off_still_works(
    tmp_path: Path,
) -> None:
    from labctl.sim import chassis

    offs = tmp_path / "offs"
    chassis.prepare(tmp_path, ("true",), ("sh", "-c", f"echo off >> {offs}"), None, True)
    chassis.ignore(tmp_path, {"soft"})  # the fault: the OS does not act on ACPI
    assert set_(tmp_path, "shutdown", "1").returncode == 0  # the BMC took the request
    assert get(tmp_path, "power").stdout == "power:1\n" and not offs.exists()
    assert "soft shutdown ignored" in (tmp_path / "chassis.log").read_text()
    assert set_(tmp_path, "power", "0").returncode == 0  # a hard off is not the OS's to ignore
    assert get(tmp_path, "power").stdout == "power:0\n" and offs.read_text() == "off\n"

    chassis.ignore(tmp_path, ())  # cleared: soft-off stops the server again
    assert chassis.ignored(tmp_path) == set()
    assert set_(tmp_path, "power", "1").returncode == 0
    assert set_(tmp_path, "shutdown", "1").returncode == 0
    assert get(tmp_path, "power").stdout == "power:0\n" and offs.read_text() == "off\noff\n"
