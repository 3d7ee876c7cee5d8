"""An FRR switch's CLI takes the run's shared SSH connection (issue 28 item 2).

A converged bootstrap's power layer finds every server on and asks each switch, per
server, whether labctl's drain is still on the server's session (``graceful.py``'s
call-back): with a login per question, 3 servers and 2 switches made 6 logins, most of
the power layer's 0.6 s. Against a real OpenSSH sshd on loopback, logins counted where
labctl makes them (``drivers.ssh.log_in``): inside ``shared_sessions()`` (as bootstrap
runs) one login serves every question; outside it each question logs in, as before.
Whatever ``vtysh`` answers here (no FRR daemon listens on this host's own paths) is not
the point: the login is made before the command runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.calico.switch_cli import FrrCli
from labctl.drivers import ssh as ssh_driver
from labctl.errors import LabctlError
from tests.peers.sshd import SshdPeer, running_sshd, ssh_target

pytestmark = pytest.mark.integration


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshdPeer]:
    with running_sshd(tmp_path / "sshd") as peer:
        yield peer


@pytest.fixture
def logins(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    made: list[str] = []
    real = ssh_driver.log_in

    def counted(client: object, target: ssh_driver.SshTarget) -> None:
        made.append(target.name)
        real(client, target)  # type: ignore[arg-type]

    monkeypatch.setattr(ssh_driver, "log_in", counted)
    return made


def ask(cli: FrrCli, times: int) -> None:
    for _ in range(times):
        # vtysh's own answer may be an error here; the login it came over is what counts.
        with contextlib.suppress(LabctlError):
            cli.running()


def test_frr_questions_share_the_runs_connection(sshd: SshdPeer, logins: list[str]) -> None:
    switch = ssh_target(sshd, "kek-core", user="root", connect_timeout=5)
    with ssh_driver.shared_sessions():
        ask(FrrCli(switch), 3)
        ask(FrrCli(switch), 3)  # another server's call-back, another FrrCli
    assert logins == ["kek-core"]  # on main: six


def test_outside_a_run_each_question_logs_in(sshd: SshdPeer, logins: list[str]) -> None:
    ask(FrrCli(ssh_target(sshd, "kek-core", user="root", connect_timeout=5)), 2)
    assert logins == ["kek-core", "kek-core"]
