"""Which Kubernetes binaries a node must get, from what it says they are (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.kubernetes.delivery import Stale, stale_binaries

NAMES = ["kube-apiserver", "kubelet"]


def test_a_node_with_the_version_needs_nothing() -> None:
    answer = "kube-apiserver v1.36.3\nkubelet v1.36.3\n"
    assert stale_binaries(answer, NAMES, "v1.36.3") == []


def test_missing_unreadable_other_versions_and_unmentioned_are_stale() -> None:
    assert stale_binaries("kube-apiserver -\nkubelet v1.35.0\n", NAMES, "v1.36.3") == [
        Stale("kube-apiserver", "missing"),
        Stale("kubelet", "v1.35.0"),
    ]
    assert stale_binaries("kubelet ?\n", NAMES, "v1.36.3") == [
        Stale("kube-apiserver", "missing"),  # the answer does not mention it
        Stale("kubelet", "unreadable"),
    ]


def test_what_is_said_of_each() -> None:
    assert Stale("kubelet", "v1.35.0").describe("v1.36.3") == "kubelet is v1.35.0, not v1.36.3"
    assert Stale("kubelet", "missing").describe("v1.36.3") == "kubelet is missing"


def test_a_dry_run_before_the_node_answers_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """observe() of a node that refuses SSH (a closed loopback port) is a sentence."""
    from labctl.drivers.ssh import SshSession, SshTarget
    from labctl.engine.layer import LayerContext
    from labctl.inventory import require_inventory
    from labctl.kubernetes.work import BinariesWork
    from tests.conftest import REFERENCE
    from tests.peers.sshd import free_port

    closed = SshTarget("fohn", "127.0.0.1", tmp_path / "known_hosts", port=free_port())
    monkeypatch.setattr(BinariesWork, "_ssh", lambda self, ctx, server: SshSession(closed))
    ctx = LayerContext(require_inventory(REFERENCE), REFERENCE, tmp_path / "state", dry_run=True)
    said = BinariesWork().observe(ctx)
    assert said is not None
    for name in ("fohn", "chequita", "wind"):  # each asked, each said
        assert f"{name} cannot be asked yet (" in said
    assert said.endswith("its binaries would be sent")
