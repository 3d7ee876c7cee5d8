"""The Kubernetes binaries onto a node over a real sshd: sent when missing or another
version, left alone when right, checked by running them there."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.drivers.ssh import SshSession, SshTarget
from labctl.errors import LabctlError
from labctl.kubernetes import delivery
from labctl.kubernetes.binaries import bin_dir
from tests.conftest import REFERENCE
from tests.peers.sshd import SshdPeer, running_sshd

pytestmark = pytest.mark.integration
VERSION = "v" + next(
    line.split()[1] for line in REFERENCE.read_text().splitlines() if "version: 1." in line
)
BUILD = bin_dir(VERSION)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[SshSession]:
    assert (BUILD / "kubelet").exists(), f"{BUILD} lacks kubelet: scripts/build-kubernetes.sh"
    with running_sshd(tmp_path / "sshd") as peer, SshSession(target(peer)) as ssh:
        yield ssh


def target(peer: SshdPeer) -> SshTarget:
    return SshTarget("n1", peer.host, peer.known_hosts, port=peer.port,
                     identity_file=peer.client_key)  # fmt: skip


def test_sent_when_missing_then_left_alone(node: SshSession, tmp_path: Path) -> None:
    folder = str(tmp_path / "node" / "opt" / "bin")
    names = ["kubelet"]
    stale = delivery.node_stale(node, folder, names, VERSION)
    assert stale == [delivery.Stale("kubelet", "missing")]
    start = time.monotonic()
    assert delivery.deliver(node, folder, stale, BUILD, VERSION) == ["kubelet"]
    took = time.monotonic() - start
    size = (BUILD / "kubelet").stat().st_size
    print(f"kubelet ({size / 2**20:.0f} MiB) sent over SSH in {took:.1f} s")
    sent = Path(folder) / "kubelet"
    assert sent.read_bytes() == (BUILD / "kubelet").read_bytes()
    assert oct(sent.stat().st_mode & 0o777) == "0o755"
    assert not [p for p in Path(folder).iterdir() if p.name.startswith(".labctl")]
    # The node itself says the version now; a second look finds nothing to send.
    assert delivery.node_stale(node, folder, names, VERSION) == []


def test_another_version_is_replaced(node: SshSession, tmp_path: Path) -> None:
    folder = tmp_path / "node" / "opt" / "bin"
    folder.mkdir(parents=True)
    old = folder / "kubelet"
    old.write_text("#!/bin/sh\necho 'Kubernetes v1.35.0'\n")
    old.chmod(0o755)
    stale = delivery.node_stale(node, str(folder), ["kubelet"], VERSION)
    assert [s.describe(VERSION) for s in stale] == [f"kubelet is v1.35.0, not {VERSION}"]
    delivery.deliver(node, str(folder), stale, BUILD, VERSION)
    assert delivery.node_stale(node, str(folder), ["kubelet"], VERSION) == []


def test_no_build_here_is_a_sentence_and_nothing_is_written(
    node: SshSession, tmp_path: Path
) -> None:
    folder = tmp_path / "node" / "opt" / "bin"
    empty = tmp_path / "no-build"
    empty.mkdir()
    stale = delivery.node_stale(node, str(folder), ["kubelet"], VERSION)
    # The command that builds exactly the version the node needs, not the pinned one.
    want = rf"run `labctl kubernetes build --version {re.escape(VERSION.lstrip('v'))}`"
    with pytest.raises(LabctlError, match=want):
        delivery.deliver(node, str(folder), stale, empty, VERSION)
    assert not folder.exists() or not os.listdir(folder)


def test_a_binary_that_still_says_otherwise_after_sending_is_refused(
    node: SshSession, tmp_path: Path
) -> None:
    """A build that is not the version (a wrong cache) is named, not taken for done."""
    wrong = tmp_path / "wrong-build"
    wrong.mkdir()
    (wrong / "kubelet").write_text("#!/bin/sh\necho 'Kubernetes v1.30.0'\n")
    folder = str(tmp_path / "node" / "opt" / "bin")
    stale = delivery.node_stale(node, folder, ["kubelet"], VERSION)
    with pytest.raises(
        LabctlError, match=f"n1: after sending the binaries, kubelet is v1.30.0, not {VERSION}"
    ):
        delivery.deliver(node, folder, stale, wrong, VERSION)
