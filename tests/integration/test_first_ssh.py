"""The first SSH after an install, against a real OpenSSH sshd on loopback.

The sshd plays fohn freshly installed: its host key is the one labctl planted
(or, for the refusals, another), and the os-release it shows is a file the test
writes. ``first_login`` must pin the planted key (``.labctl/os/hostkeys/fohn``)
before connecting, refuse any other key with a sentence, and refuse an OS whose
``VERSION_ID`` is not the inventory's ``os.version``. Only the address lookup
is pointed at the loopback sshd; the SSH peer is real.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from labctl.drivers.ssh import SshSession, SshTarget
from labctl.errors import LabctlError
from labctl.inventory import require_inventory
from labctl.os.firstssh import first_login
from tests.conftest import REFERENCE
from tests.peers.sshd import SshdPeer, running_sshd

pytestmark = pytest.mark.integration

FLATCAR = 'ID=flatcar\nVERSION_ID=3975.2.0\nNAME="Flatcar Container Linux by Kinvolk"\n'


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshdPeer]:
    with running_sshd(tmp_path / "sshd") as peer:
        yield peer


def plant(state: Path, key_file: Path) -> str:
    """The host key as labctl keeps what it minted and planted; its public ``type blob``."""
    keys = state / "os" / "hostkeys"
    keys.mkdir(parents=True, exist_ok=True)
    (keys / "fohn").write_text(key_file.read_text())
    (keys / "fohn").chmod(0o600)
    public = key_file.with_name(f"{key_file.name}.pub").read_text().split()
    (keys / "fohn.pub").write_text(f"{public[0]} {public[1]} labctl-host-key-fohn\n")
    return f"{public[0]} {public[1]}"


def fingerprint_of(key_file: Path) -> str:
    done = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(key_file)], capture_output=True, text=True, check=True
    )
    return done.stdout.split()[1]


def context(
    peer: SshdPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, release: str, version: str = ""
) -> Any:
    text = REFERENCE.read_text()
    if version:
        text = text.replace(
            "os: {distribution: flatcar, channel: beta}",
            f"os: {{distribution: flatcar, channel: beta, version: {version}}}",
            1,
        )
    (tmp_path / "inventory.yaml").write_text(text)
    (tmp_path / "os-release").write_text(release)
    known = tmp_path / "known_hosts"
    if not known.exists():  # what labctl knew before: the old OS's key, and another host's
        known.write_text(
            f"[{peer.host}]:{peer.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOLDOLDOLDOLD\n"
            "other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOTHEROTHEROTHER\n"
        )
    target = SshTarget(
        name="fohn",
        host=peer.host,
        port=peer.port,
        known_hosts=known,
        identity_file=peer.client_key,
        user="root",
        connect_timeout=5,
    )
    monkeypatch.setattr("labctl.targets.ssh_target", lambda *_: target)
    return SimpleNamespace(
        inventory=require_inventory(tmp_path / "inventory.yaml"),
        base_dir=tmp_path,
        state_dir=tmp_path / "state",
        on_node=lambda node, path: str(tmp_path) + path.replace("/etc", ""),
    )


def test_the_planted_key_is_pinned_before_the_first_connection(
    sshd: SshdPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = context(sshd, tmp_path, monkeypatch, FLATCAR, version="3975.2.0")
    planted = plant(ctx.state_dir, sshd.host_key)
    got = first_login(ctx, "fohn", deadline=10)
    assert got == fingerprint_of(sshd.host_key)
    assert (tmp_path / "known_hosts").read_text().splitlines() == [
        "other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOTHEROTHEROTHER",
        f"[{sshd.host}]:{sshd.port} {planted}",
    ]
    # From then on the strict driver accepts it.
    from labctl import targets

    with SshSession(targets.ssh_target(ctx.inventory, tmp_path, "fohn")) as ssh:
        assert ssh.run(("true",)).ok


def test_a_node_showing_another_key_than_the_planted_one_is_refused(
    sshd: SshdPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the first connection took whatever key the node showed."""
    ctx = context(sshd, tmp_path, monkeypatch, FLATCAR)
    other = tmp_path / "other_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
        check=True,
        capture_output=True,
    )
    planted = plant(ctx.state_dir, other)
    with pytest.raises(LabctlError) as refused:
        first_login(ctx, "fohn", deadline=10)
    assert str(refused.value) == (
        f"fohn: answers SSH with host key {fingerprint_of(sshd.host_key)}, not the key labctl "
        f"planted through its Ignition ({fingerprint_of(other)}); refusing it (another "
        "machine on its address, or an install that did not use labctl's config)"
    )
    shown = sshd.host_key.with_name(f"{sshd.host_key.name}.pub").read_text().split()[1]
    known = (tmp_path / "known_hosts").read_text()
    assert shown not in known and planted in known


def test_an_install_of_another_version_than_os_version_is_refused(
    sshd: SshdPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    older = FLATCAR.replace("3975.2.0", "3815.2.5")
    ctx = context(sshd, tmp_path, monkeypatch, older, version="3975.2.0")
    plant(ctx.state_dir, sshd.host_key)
    with pytest.raises(LabctlError) as refused:
        first_login(ctx, "fohn", deadline=10)
    assert str(refused.value) == (
        "fohn: installed, but its /etc/os-release says flatcar VERSION_ID=3815.2.5, not "
        "os.version 3975.2.0; the installer wrote another release than the inventory's"
    )
    # Without os.version, the distribution is all that is checked.
    first_login(context(sshd, tmp_path, monkeypatch, older), "fohn", deadline=10)
    debian = context(sshd, tmp_path, monkeypatch, "ID=debian\nVERSION_ID=12\n")
    with pytest.raises(LabctlError, match="runs debian, not flatcar"):
        first_login(debian, "fohn", deadline=10)
