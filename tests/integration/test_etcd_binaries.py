"""The host runtime's etcd onto a node over a real sshd (``etcd/binaries.py``): the
build of the version sent where it is missing or another version, left alone where
it is right, and checked by running it there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.drivers.ssh import SshSession, SshTarget
from labctl.errors import LabctlError
from labctl.etcd import binaries, build
from tests.peers.sshd import running_sshd

pytestmark = pytest.mark.integration
VERSION = "3.5.21"
BUILD = build.bin_dir(build.tag(VERSION))


@pytest.fixture
def node(tmp_path: Path) -> Iterator[SshSession]:
    assert (BUILD / "etcd").exists(), f"{BUILD} lacks etcd: labctl etcd build --version {VERSION}"
    with running_sshd(tmp_path / "sshd") as peer:
        target = SshTarget("m1", peer.host, peer.known_hosts, port=peer.port,
                           identity_file=peer.client_key)  # fmt: skip
        with SshSession(target) as ssh:
            yield ssh


def test_the_versions_etcd_is_sent_when_missing_or_other_and_then_left_alone(
    node: SshSession, tmp_path: Path
) -> None:
    folder = tmp_path / "node" / "opt" / "labctl" / "etcd" / f"v{VERSION}"
    assert binaries.node_stale(node, str(folder), VERSION) == {
        "etcd": "missing",
        "etcdctl": "missing",
    }
    assert binaries.deliver(node, str(folder), VERSION, BUILD) == ["etcd", "etcdctl"]
    assert (folder / "etcd").read_bytes() == (BUILD / "etcd").read_bytes()
    assert oct((folder / "etcd").stat().st_mode & 0o777) == "0o755"
    assert binaries.node_stale(node, str(folder), VERSION) == {}
    assert binaries.deliver(node, str(folder), VERSION, BUILD) == []  # converged: nothing sent

    # Another version there (the OS's etcd, as a stand-in): replaced, etcdctl kept.
    (folder / "etcd").write_bytes(Path("/usr/bin/etcd").read_bytes())
    stale = binaries.node_stale(node, str(folder), VERSION)
    assert list(stale) == ["etcd"] and stale["etcd"] != VERSION, stale
    assert binaries.deliver(node, str(folder), VERSION, BUILD) == ["etcd"]
    assert binaries.node_stale(node, str(folder), VERSION) == {}


def test_a_version_not_built_here_names_the_command_that_builds_it() -> None:
    with pytest.raises(LabctlError, match=r"run `labctl etcd build --version 3\.9\.99`"):
        binaries.source("3.9.99")
