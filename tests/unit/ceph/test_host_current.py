"""The host runtime's daemons are not restarted when they already run what a restart would.

``current`` (``ceph-current.sh``) lets a restart step leave alone a daemon that already
runs what its restart would start: an interrupted roll resumes, and a restart step
that runs again for no change of the daemon's own (labctl's new script) restarts
nothing. In a container runtime that is the unit's container on the unit's image; in
the host runtime it is the unit's main process (systemd's ``MainPID``) started after
the unit file and ceph.conf last changed, with its program and libraries as they were
when it started (a package upgrade replaces them: its executable mappings then name
"(deleted)" files). The scripts run here under sh with stand-ins for systemctl and
ceph, and a real process standing for the daemon: a copy of ``sleep``, or ``sleep``
loading a copy of its C library, which the tests replace as a package upgrade does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.layers.ceph import OSD_RESTART, RESTART

# systemctl: every unit active, its MainPID from the folder (0: none); others logged.
SYSTEMCTL = """#!/bin/sh
case "$1" in
  is-active) shift; for u; do echo active; done ;;
  show) for u; do :; done; cat "{d}/mainpid-$u" 2>/dev/null || echo 0 ;;
  *) echo "systemctl $*" >> {d}/calls ;;
esac
"""
# ceph: every OSD and monitor answers; ok-to-stop yes; every PG clean.
CEPH = """#!/bin/sh
echo "ceph $*" >> {d}/calls
case "$*" in
  *"daemon osd."*) echo '{{"state": "active"}}' ;;
  *"pg stat"*) echo '{{"num_pg_by_state": [{{"name": "active+clean", "num": 32}}]}}' ;;
esac
"""
UNITS = ("ceph-mgr-ada.service", "ceph-osd-0.service")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Path]:
    """A folder standing for a node: stand-ins on PATH, units and ceph.conf written
    100 s ago; the test starts the daemons (``start``), killed at its end."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("ceph", CEPH), ("systemctl", SYSTEMCTL)):
        (bin_dir / name).write_text(text.format(d=tmp_path))
        (bin_dir / name).chmod(0o755)
    units = tmp_path / "units"
    units.mkdir()
    old = time.time() - 100
    for name in (*UNITS, "ceph.conf"):
        (units / name).write_text("x")
        os.utime(units / name, (old, old))
    yield tmp_path
    for pid_file in tmp_path.glob("mainpid-*"):
        pid = int(pid_file.read_text())
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def start(node: Path, unit: str, argv: list[str], env: dict[str, str] | None = None) -> None:
    """``unit``'s main process: ``argv`` started now (after its unit last changed)."""
    process = subprocess.Popen(argv, env=env)
    (node / f"mainpid-{unit}").write_text(f"{process.pid}\n")
    time.sleep(0.2)  # its libraries loaded before anything reads its maps


def replace(path: Path) -> None:
    """``path`` replaced as a package upgrade does: a new file renamed over it."""
    new = path.with_name(path.name + ".new")
    shutil.copy2(path, new)
    new.rename(path)


def restart(node: Path, unit: str = UNITS[0]) -> tuple[str, list[str]]:
    """ceph-restart.sh (managers, MDSs) on ``unit`` in the host runtime: its output and
    the calls that changed something."""
    units = node / "units"
    (node / "calls").unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{node / 'bin'}:{os.environ['PATH']}"}
    done = subprocess.run(["sh", "-c", RESTART, "test", "", "", str(units),
                           str(units / "ceph.conf"), unit],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    calls = node / "calls"
    return done.stdout, calls.read_text().splitlines() if calls.exists() else []


def test_a_daemon_started_after_its_conf_is_not_restarted_and_one_older_than_it_is(
    node: Path,
) -> None:
    # Not running under its unit (no MainPID): restarted, as before.
    assert restart(node)[1] == ["systemctl restart ceph-mgr-ada.service"]
    start(node, UNITS[0], ["sleep", "60"])
    said, calls = restart(node)
    assert calls == [] and "ceph-mgr-ada.service already runs" in said
    # ceph.conf written after the daemon started: restarted.
    (node / "units" / "ceph.conf").write_text("changed")
    assert restart(node)[1] == ["systemctl restart ceph-mgr-ada.service"]


def test_a_daemon_whose_program_was_replaced_since_it_started_is_restarted(
    node: Path, tmp_path: Path
) -> None:
    program = tmp_path / "ceph-mgr"
    shutil.copy2(shutil.which("sleep") or "/bin/sleep", program)
    start(node, UNITS[0], [str(program), "60"])
    assert restart(node)[1] == []
    replace(program)  # a package upgrade: /proc/PID/exe now ends "(deleted)"
    assert restart(node)[1] == ["systemctl restart ceph-mgr-ada.service"]


def test_a_daemon_whose_library_was_replaced_since_it_started_is_restarted(
    node: Path, tmp_path: Path
) -> None:
    libc = next(
        Path(line.split()[-1])
        for line in Path("/proc/self/maps").read_text().splitlines()
        if line.split()[-1].endswith("/libc.so.6")
    )
    libs = tmp_path / "lib"
    libs.mkdir()
    shutil.copy2(libc, libs / "libc.so.6")
    start(node, UNITS[0], ["sleep", "60"], {**os.environ, "LD_LIBRARY_PATH": str(libs)})
    assert restart(node)[1] == []
    replace(libs / "libc.so.6")  # its program is the same file; a library it maps is not
    assert restart(node)[1] == ["systemctl restart ceph-mgr-ada.service"]


def test_an_interrupted_host_roll_restarts_only_the_osds_not_yet_restarted(node: Path) -> None:
    units = node / "units"
    start(node, UNITS[1], ["sleep", "60"])  # osd.0 restarted before the interruption
    start(node, "ceph-osd-1.service", ["sleep", "60"])
    (units / "ceph-osd-1.service").write_text("y")  # osd.1 was not: its unit is newer
    env = {**os.environ, "PATH": f"{node / 'bin'}:{os.environ['PATH']}"}
    done = subprocess.run(["sh", "-c", OSD_RESTART, "test", "ceph", "30", "", "", str(units),
                           str(units / "ceph.conf"), str(node / "mark" / "noout"),
                           "ceph-osd-0.service:0", "ceph-osd-1.service:1"],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ceph-osd-0.service already runs" in done.stdout
    calls = (node / "calls").read_text().splitlines()
    assert [c for c in calls if c.startswith("systemctl")] == [
        "systemctl restart ceph-osd-1.service"
    ]
    assert "ceph --connect-timeout 5 osd ok-to-stop 1" in calls
