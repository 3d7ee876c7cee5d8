"""A simulated node's power-off removes its containers' cgroups, by id, and no others."""

from __future__ import annotations

from pathlib import Path

from labctl.sim import node


def test_power_off_releases_only_this_nodes_container_cgroups(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cri = node.node_dir(state, "fohn").joinpath(*node.CRI_STATE)
    (cri / "sandboxes" / "aaa").mkdir(parents=True)
    (cri / "containers" / "bbb").mkdir(parents=True)
    root = tmp_path / "cgroup"
    for hierarchy in ("memory", "pids"):
        for container in ("aaa", "bbb", "other-lab"):
            (root / hierarchy / "k8s.io" / container).mkdir(parents=True)
    removed = node.release_cgroups(state, "fohn", root)
    assert sorted(str(p.relative_to(root)) for p in removed) == [
        "memory/k8s.io/aaa", "memory/k8s.io/bbb", "pids/k8s.io/aaa", "pids/k8s.io/bbb",
    ]  # fmt: skip
    assert sorted(p.name for p in (root / "memory" / "k8s.io").iterdir()) == ["other-lab"]


def test_a_node_that_never_ran_containers_releases_nothing(tmp_path: Path) -> None:
    assert node.release_cgroups(tmp_path / "state", "wind", tmp_path / "cgroup") == []
