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
