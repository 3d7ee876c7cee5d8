"""The first SSH after an install, against a real OpenSSH sshd on loopback.

The sshd plays the freshly installed node: its host key is the one labctl
planted (or, for the refusals, another), and the os-release it shows is a file
the test writes. The first login must pin the planted key before connecting,
refuse any other key with a sentence, and refuse an OS whose ``VERSION_ID`` is
not the inventory's ``os.version``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.drivers.ssh import SshSession, SshTarget
from labctl.errors import LabctlError
from labctl.install import hostkeys
from labctl.install.firstssh import pin_and_check
from tests.peers.sshd import SshdPeer, running_sshd

pytestmark = pytest.mark.integration


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshdPeer]:
    with running_sshd(tmp_path / "sshd") as peer:
        yield peer


def target(peer: SshdPeer, known_hosts: Path) -> SshTarget:
    return SshTarget(
        name="fohn",
        host=peer.host,
        port=peer.port,
        known_hosts=known_hosts,
        identity_file=peer.client_key,
        user="root",
        connect_timeout=5,
    )


def planted_as(peer: SshdPeer) -> hostkeys.HostKey:
    """The key labctl would have minted and planted: here, the one the sshd runs with."""
    public = peer.host_key.with_suffix(".pub").read_text().strip()
    return hostkeys.HostKey("fohn", peer.host_key.read_text(), public)


def os_release(tmp_path: Path, text: str) -> str:
    path = tmp_path / "os-release"
    path.write_text(text)
    return str(path)


FLATCAR = 'ID=flatcar\nVERSION_ID=3975.2.0\nNAME="Flatcar Container Linux by Kinvolk"\n'


def test_the_planted_key_is_pinned_before_the_first_connection(
    sshd: SshdPeer, tmp_path: Path
) -> None:
    known = tmp_path / "known_hosts"
    # What labctl knew of the server before: its old OS's key, and another host's.
    known.write_text(
        f"[{sshd.host}]:{sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOLDOLDOLDOLDOLD\n"
        "other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOTHEROTHEROTHER\n"
    )
    planted = planted_as(sshd)
    got = pin_and_check(
        target(sshd, known), planted, "flatcar", "3975.2.0", os_release(tmp_path, FLATCAR), 10
    )
    assert got == planted.fingerprint
    lines = known.read_text().splitlines()
    assert lines == [
        "other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOTHEROTHEROTHER",
        f"[{sshd.host}]:{sshd.port} ssh-ed25519 {planted.blob}",
    ]
    # From then on the strict driver accepts it.
    with SshSession(target(sshd, known)) as ssh:
        assert ssh.run(("true",)).ok


def test_a_node_showing_another_key_than_the_planted_one_is_refused(
    sshd: SshdPeer, tmp_path: Path
) -> None:
    """Before, the first connection took whatever key the node showed."""
    known = tmp_path / "known_hosts"
    private, public = hostkeys.mint()
    planted = hostkeys.HostKey("fohn", private, public)
    with pytest.raises(LabctlError) as refused:
        pin_and_check(
            target(sshd, known), planted, "flatcar", None, os_release(tmp_path, FLATCAR), 10
        )
    shown = planted_as(sshd).fingerprint
    assert str(refused.value) == (
        f"fohn: answers SSH with host key {shown}, not the key labctl planted through its "
        f"Ignition ({planted.fingerprint}); refusing it (another machine on its address, or "
        "an install that did not use labctl's config)"
    )
    assert shown not in known.read_text() and planted_as(sshd).blob not in known.read_text()


def test_an_install_of_another_version_than_os_version_is_refused(
    sshd: SshdPeer, tmp_path: Path
) -> None:
    known = tmp_path / "known_hosts"
    release = os_release(tmp_path, FLATCAR.replace("3975.2.0", "3815.2.5"))
    with pytest.raises(LabctlError) as refused:
        pin_and_check(target(sshd, known), planted_as(sshd), "flatcar", "3975.2.0", release, 10)
    assert str(refused.value) == (
        "fohn: installed, but its /etc/os-release says flatcar VERSION_ID=3815.2.5, not "
        "os.version 3975.2.0; the installer wrote another release than the inventory's"
    )
    # Without os.version, the distribution is all that is checked.
    pin_and_check(target(sshd, known), planted_as(sshd), "flatcar", None, release, 10)
    with pytest.raises(LabctlError, match="runs debian, not flatcar"):
        pin_and_check(
            target(sshd, known), planted_as(sshd), "flatcar", None,
            os_release(tmp_path, "ID=debian\nVERSION_ID=12\n"), 10,
        )  # fmt: skip
