"""The simulated nodes' `systemctl` restarting a unit whose daemons outlive its leader.

FRR's unit on a simulated switch is ``sh -c 'zebra & bgpd & snmpd & wait'``: at
SIGTERM the shell exits at once while snmpd is still shutting down. A restart
that started again then left the new snmpd unable to bind its port (it exits,
and the unit runs on without it). Here a real shell and a real daemon that
takes half a second to let go of its UDP port, restarted: the new one binds.
"""

from __future__ import annotations

import socket
import sys
import textwrap
import time
from pathlib import Path

import pytest

from labctl.sim import systemctl

DAEMON = textwrap.dedent(
    """
    import os, signal, socket, sys, time
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError as exc:
        open(sys.argv[2], "a").write(f"failed {exc}\\n")
        sys.exit(1)
    open(sys.argv[2], "a").write(f"bound {os.getpid()}\\n")
    signal.signal(signal.SIGTERM, lambda *_: (time.sleep(0.5), sys.exit(0)))
    while True:
        time.sleep(1)
    """
)


@pytest.fixture
def units(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in {
        "UNITS": tmp_path / "units", "WANTS": tmp_path / "units" / "wants",
        "RUN": tmp_path / "run", "LOG": tmp_path / "systemctl.log",
        "UNIT_LOGS": tmp_path / "logs",
    }.items():  # fmt: skip
        monkeypatch.setattr(systemctl, name, value)
    (tmp_path / "units").mkdir()
    return tmp_path


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_restart_waits_for_every_process_of_the_unit(units: Path) -> None:
    script = units / "daemon.py"
    script.write_text(DAEMON)
    marks = units / "marks"
    port = free_udp_port()
    command = f"{sys.executable} {script} {port} {marks}"
    (units / "units" / "slow.service").write_text(
        f"[Service]\nExecStart=/bin/sh -c '{command} & wait'\n"
    )
    try:
        assert systemctl.main(["start", "slow"]) == 0
        deadline = time.monotonic() + 10
        while not (marks.exists() and marks.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        first = int(marks.read_text().split()[1])
        leader = systemctl.pid_of("slow.service")
        assert leader is not None
        assert systemctl.main(["restart", "slow"]) == 0
        deadline = time.monotonic() + 10
        while len(marks.read_text().splitlines()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = marks.read_text().splitlines()
        assert [line.split()[0] for line in lines] == ["bound", "bound"], lines
        assert int(lines[1].split()[1]) != first
        assert not systemctl.group_alive(leader)  # the daemon, not only its shell
    finally:
        systemctl.main(["stop", "slow"])
    assert systemctl.pid_of("slow.service") is None


def test_exec_start_pre_and_exec_stop_run_as_systemd_runs_them(units: Path) -> None:
    """A container unit: ``-docker rm -f NAME`` before (its failure ignored), ``docker
    stop NAME`` at stop, before the unit's process group is signalled."""
    marks = units / "marks"
    (units / "units" / "box.service").write_text(
        "[Service]\n"
        f"ExecStartPre=-/bin/sh -c 'echo pre-ignored >> {marks}; exit 1'\n"
        f"ExecStartPre=/bin/sh -c 'echo pre >> {marks}'\n"
        f"ExecStart=/bin/sh -c 'echo start >> {marks}; exec sleep 30'\n"
        # Still running when ExecStop runs: it is what stops the container.
        f"ExecStop=/bin/sh -c 'kill -0 $(cat {units}/run/box.service.pid) && "
        f"echo stop-while-running >> {marks}'\n"
    )
    try:
        assert systemctl.main(["start", "box"]) == 0
        deadline = time.monotonic() + 10
        while "start" not in marks.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert systemctl.main(["stop", "box"]) == 0
        assert marks.read_text().splitlines() == [
            "pre-ignored", "pre", "start", "stop-while-running",
        ]  # fmt: skip
    finally:
        systemctl.main(["stop", "box"])
    assert systemctl.pid_of("box.service") is None


def test_a_failing_exec_start_pre_keeps_the_unit_from_starting(units: Path) -> None:
    (units / "units" / "no.service").write_text(
        "[Service]\nExecStartPre=/bin/false\nExecStart=/bin/sleep 30\n"
    )
    assert systemctl.main(["start", "no"]) == 1
    assert systemctl.pid_of("no.service") is None


def test_user_and_group_run_the_unit_as_that_user_but_a_plus_line_as_root(units: Path) -> None:
    """The monitoring layer's host runtime: ``User=``/``Group=`` run the program as its
    own user; an ``ExecStartPre=+`` line (copying root's keys for it) runs as root."""
    import shutil
    import tempfile

    marks = Path(tempfile.mkdtemp(prefix="labctl-systemctl-"))  # reachable by nobody
    marks.chmod(0o777)
    (units / "units" / "who.service").write_text(
        "[Service]\nUser=nobody\nGroup=nogroup\n"
        f"ExecStartPre=+/bin/sh -c 'id -u > {marks}/pre-plus'\n"
        f"ExecStartPre=/bin/sh -c 'id -u > {marks}/pre'\n"
        f"ExecStart=/bin/sh -c 'id -u > {marks}/start; id -g >> {marks}/start; exec sleep 30'\n"
    )
    try:
        assert systemctl.main(["start", "who"]) == 0
        deadline = time.monotonic() + 10
        while not (marks / "start").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        assert (marks / "pre-plus").read_text() == "0\n"
        assert (marks / "pre").read_text() == "65534\n"
        assert (marks / "start").read_text() == "65534\n65534\n"
    finally:
        systemctl.main(["stop", "who"])
        shutil.rmtree(marks)
