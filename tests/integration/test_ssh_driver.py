"""The SSH driver against a real OpenSSH sshd on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.drivers.ssh import RemoteCommandError, SshSession, SshTarget
from labctl.errors import AuthenticationError, DriverError, DriverTimeout, HostKeyError
from tests.peers.sshd import SshdPeer, free_port, running_sshd, ssh_target

pytestmark = pytest.mark.integration


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshdPeer]:
    with running_sshd(tmp_path / "sshd") as peer:
        yield peer


def target(peer: SshdPeer, **changes: object) -> SshTarget:
    return ssh_target(peer, "node1", **{"user": "root", "connect_timeout": 5, **changes})


def test_run_captures_output_and_exit_code(sshd: SshdPeer) -> None:
    with SshSession(target(sshd)) as ssh:
        result = ssh.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
        assert (result.exit_code, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
        with pytest.raises(RemoteCommandError) as caught:
            ssh.run(["false"])
        assert "exited 1" in str(caught.value)
        # arguments are quoted, never interpreted by a shell
        assert ssh.run(["echo", "a b; rm -rf /nonexistent"]).stdout == b"a b; rm -rf /nonexistent\n"
        big = ssh.run(["head", "-c", "300000", "/dev/zero"]).stdout
        assert len(big) == 300000


def test_command_timeout(sshd: SshdPeer) -> None:
    with SshSession(target(sshd)) as ssh:
        start = time.monotonic()
        with pytest.raises(DriverTimeout):
            ssh.run(["sleep", "30"], timeout=0.5)
        assert time.monotonic() - start < 3
        assert ssh.run(["true"]).ok  # the session survives a timed-out command


def test_put_file_atomic_idempotent_with_mode(sshd: SshdPeer, tmp_path: Path) -> None:
    path = str(tmp_path / "remote" / "deep" / "cert.pem")
    with SshSession(target(sshd)) as ssh:
        assert ssh.put_file(path, b"one\n", mode=0o600) is True
        assert Path(path).read_bytes() == b"one\n"
        assert oct(Path(path).stat().st_mode & 0o777) == "0o600"
        assert ssh.put_file(path, b"one\n", mode=0o600) is False  # unchanged: nothing written
        assert ssh.put_file(path, b"one\n", mode=0o644) is True  # mode differs
        assert ssh.put_file(path, b"two\n", mode=0o644, owner="nobody") is True
        assert Path(path).stat().st_uid != 0
        assert ssh.read_file(path) == b"two\n"
        assert ssh.put_file(path, b"", mode=0o644) is True
        assert Path(path).read_bytes() == b""
    leftovers = [p.name for p in Path(path).parent.iterdir() if p.name.startswith(".labctl")]
    assert leftovers == []


def test_unknown_host_key_is_refused(sshd: SshdPeer, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyError, match="not in"):
        SshSession(target(sshd, known_hosts=empty)).connect()


def test_changed_host_key_is_refused(sshd: SshdPeer, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    os.system(f"ssh-keygen -q -t ed25519 -N '' -f {other}")
    public = (tmp_path / "other_key.pub").read_text().split()
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[{sshd.host}]:{sshd.port} {public[0]} {public[1]}\n")
    with pytest.raises(HostKeyError, match="does not match"):
        SshSession(target(sshd, known_hosts=wrong)).connect()


def test_wrong_key_is_an_authentication_error(sshd: SshdPeer, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    os.system(f"ssh-keygen -q -t ed25519 -N '' -f {stranger}")
    with pytest.raises(AuthenticationError):
        SshSession(target(sshd, identity_file=stranger)).connect()


def test_nobody_listening(tmp_path: Path, sshd: SshdPeer) -> None:
    port = free_port()
    with pytest.raises(DriverError) as caught:
        SshSession(target(sshd, port=port)).connect()
    assert not isinstance(caught.value, DriverTimeout)
    assert str(caught.value) == (
        f"node1 (127.0.0.1:{port}): connecting as root: connection refused by 127.0.0.1:{port}: "
        "the host is there but nothing listens on that port (the SSH server is not running, "
        "or the port is wrong)"
    )
    assert caught.value.detail == "[Errno 111] Connection refused"


def test_an_address_with_no_route_is_told_as_such(sshd: SshdPeer) -> None:
    # The kernel has no TCP route to loopback's broadcast address: ENETUNREACH, as for
    # a network this machine does not reach, without touching any route.
    with pytest.raises(DriverError) as caught:
        SshSession(target(sshd, host="127.255.255.255")).connect()
    assert str(caught.value) == (
        f"node1 (127.255.255.255:{sshd.port}): connecting as root: network unreachable for "
        "127.255.255.255: this machine has no route to the node's network: it is down or not "
        "routed here"
    )
    assert caught.value.detail == "[Errno 101] Network is unreachable"


def test_a_connection_that_breaks_under_a_command_is_a_driver_error(sshd: SshdPeer) -> None:
    def cut() -> None:
        time.sleep(0.5)
        # The listener's children are the sessions' sshd processes: killing them drops ours.
        for pid in subprocess.run(
            ["pgrep", "-P", str(sshd.pid)], capture_output=True, text=True, check=False
        ).stdout.split():
            os.kill(int(pid), signal.SIGKILL)

    with SshSession(target(sshd)) as ssh:
        cutter = threading.Thread(target=cut)
        cutter.start()
        try:
            # The command reads nothing for 3 s: the upload is still going when the cut comes.
            with pytest.raises(DriverError) as caught:
                ssh.run(["sh", "-c", "sleep 3; cat >/dev/null"], stdin=b"x" * 50_000_000)
        finally:
            cutter.join()
    assert str(caught.value).startswith(f"node1 (127.0.0.1:{sshd.port}): `sh -c ")
    assert caught.value.detail


def test_non_root_user_goes_through_sudo(sshd: SshdPeer) -> None:
    ssh = SshSession(target(sshd, user="core"))
    assert ssh._wrap(["cat", "/etc/x y"]) == "sudo -n -- cat '/etc/x y'"


def test_a_survey_reads_files_and_tries_conditions_only_where_the_files_hold(
    sshd: SshdPeer, tmp_path: Path
) -> None:
    """One round trip: every file's hash, mode and owner, then which commands pass now;
    the commands are not run at all when a file is not as wanted (a wait that starts a
    unit must not start it on a file about to change)."""
    import hashlib

    from labctl.drivers.ssh import WantedFile

    node = tmp_path / "node"
    node.mkdir()
    conf = node / "a b.conf"  # a space in a path is the path's
    conf.write_text("a=1\n")
    conf.chmod(0o640)
    other = node / "other"
    other.write_text("a=1\n")
    other.chmod(0o640)
    ran = node / "ran"
    sha = hashlib.sha256(b"a=1\n").hexdigest()
    commands = [
        ["true"],
        ["false"],
        ["test", "a b; true", "=", "a b; true"],  # one argument, not shell, to the node
        ["sh", "-c", f"echo ran >> {ran}"],
    ]
    with SshSession(target(sshd)) as ssh:
        files, passed = ssh.survey(
            [
                WantedFile(str(conf), sha, 0o640, "root"),
                WantedFile(str(other), sha, 0o640, "root:root"),
                WantedFile(str(conf), sha, 0o640),
            ],
            commands,
            timeout=10,
        )
        assert files[str(conf)] is not None and files[str(conf)].mode == 0o640  # type: ignore[union-attr]
        assert passed == [True, False, True, True] and ran.read_text() == "ran\n"
        for unlike in (
            WantedFile(str(conf), "0" * 64, 0o640),
            WantedFile(str(conf), sha, 0o644),
            WantedFile(str(conf), sha, 0o640, "nobody"),
            WantedFile(str(node / "missing"), sha, 0o640),
        ):
            files, passed = ssh.survey([unlike], commands, timeout=10)
            assert passed is None, unlike
        assert ran.read_text() == "ran\n"  # not run again while a file differed
        assert ssh.survey([], [], timeout=10) == ({}, None)
        assert ssh.survey([], [["true"]], timeout=10) == ({}, [True])


def connection(ssh: SshSession) -> str:
    """The node's view of the TCP connection a command came in on (client port included)."""
    return ssh.run(["sh", "-c", 'echo "$SSH_CONNECTION"']).text().strip()


def test_shared_sessions_give_every_user_one_connection_per_node(sshd: SshdPeer) -> None:
    """Within ``shared_sessions()`` a connector's, a local work's (``session``) and a
    survey's (a shorter connect timeout) sessions to a node are one connection, which a
    connector's close leaves open for the others and the block's end closes."""
    from labctl.drivers.ssh import session, shared_sessions
    from labctl.targets import SshConnector

    node = target(sshd)
    with shared_sessions():
        first = SshConnector(lambda _: node)
        seen = connection(first.ssh("node1"))
        first.close()  # a CephSession's close: the run's connection stays
        with session(node) as ssh:
            assert connection(ssh) == seen
            kept = ssh
        with shared_sessions(), session(target(sshd, connect_timeout=1.5)) as nested:
            assert nested is kept and connection(nested) == seen
        assert connection(SshConnector(lambda _: node).ssh("node1")) == seen
    assert kept._client is None  # closed with the block
    # Outside a block every user has a connection of its own, as before.
    with session(node) as one, session(node) as two:
        assert one is not two and connection(one) != connection(two)
    assert one._client is None


def test_a_timed_out_command_leaves_the_next_one_a_new_connection(sshd: SshdPeer) -> None:
    """A shared connection that hung a command (a node that lost power sends no reset)
    is not handed to the next command, another thread's maybe: it reconnects."""
    with SshSession(target(sshd)) as ssh:
        before = connection(ssh)
        with pytest.raises(DriverTimeout):
            ssh.run(["sleep", "30"], timeout=0.5)
        assert connection(ssh) != before
