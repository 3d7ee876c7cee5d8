"""The version-skew rules (labctl/labdiff/skew.py): each refused one way, let through the other."""

from __future__ import annotations

import pytest

from labctl.labdiff.skew import (
    Running,
    Version,
    Wanted,
    ceph_problems,
    etcd_problems,
    kubernetes_problems,
    problems,
)

API = "https://31.31.164.218:6443"


def rules(found: list) -> list[str]:  # type: ignore[type-arg]
    return [p.rule for p in found]


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("1.36.3", Version(1, 36, 3)),
        ("v1.36.3", Version(1, 36, 3)),
        ("v1.36.3+k3s1", Version(1, 36, 3)),
        ("3.5.0-rc.1", Version(3, 5, 0)),
        ("16.2", Version(16, 2, 0)),
        ("", None),
        ("unknown", None),
    ],
)
def test_versions_are_read_as_each_daemon_reports_them(text: str, version: Version | None) -> None:
    assert Version.parse(text) == version


# -- Kubernetes --------------------------------------------------------------


def test_kubernetes_refuses_a_skipped_minor_and_names_the_field_and_both_versions() -> None:
    running = Running(api_servers={API: "v1.34.2"}, kubelets={"fohn": "v1.34.2"})
    (found,) = kubernetes_problems("1.36.3", running)
    assert found.rule == "minor-skip"
    assert found.field == "cluster.kubernetes.version"
    assert (found.wanted, found.running) == ("1.36.3", "1.34.2")
    assert found.message.startswith("cluster.kubernetes.version: 1.36.3 skips a minor version")
    assert "1.34.2" in found.message and "1.35.x first" in found.message


def test_kubernetes_lets_one_minor_through() -> None:
    running = Running(api_servers={API: "v1.34.2"}, kubelets={"fohn": "v1.34.2"})
    assert kubernetes_problems("1.35.0", running) == []


def test_kubernetes_refuses_a_major_change_and_not_the_next_minor() -> None:
    running = Running(api_servers={API: "v1.36.3"})
    assert rules(kubernetes_problems("2.0.0", running)) == ["major-change"]
    assert kubernetes_problems("1.37.0", running) == []


def test_kubernetes_refuses_a_downgrade_even_of_a_patch_and_not_the_same_version() -> None:
    running = Running(api_servers={API: "v1.36.3"}, kubelets={"fohn": "v1.36.3"})
    (found,) = kubernetes_problems("1.36.1", running)
    assert found.rule == "downgrade"
    assert "1.36.1 is older than 1.36.3" in found.message
    assert "the API server" in found.message and "the kubelet on fohn" in found.message
    assert kubernetes_problems("1.36.3", running) == []


def test_a_kubelet_newer_than_the_api_server_is_refused_and_an_older_one_is_not() -> None:
    newer = Running(api_servers={API: "v1.35.1"}, kubelets={"wind": "v1.36.0", "fohn": "v1.35.1"})
    (found,) = kubernetes_problems("1.36.0", newer)
    assert found.rule == "kubelet-newer"
    assert "the kubelet on wind runs 1.36.0" in found.message and "1.35.1" in found.message
    older = Running(api_servers={API: "v1.35.1"}, kubelets={"wind": "v1.34.0", "fohn": "v1.35.1"})
    assert kubernetes_problems("1.36.0", older) == []


def test_a_kubelet_more_than_three_minors_behind_the_new_version_is_refused() -> None:
    running = Running(api_servers={API: "v1.36.0"}, kubelets={"wind": "v1.33.0"})
    (found,) = kubernetes_problems("1.37.0", running)
    assert found.rule == "kubelet-too-old"
    assert "the kubelet on wind runs 1.33.0" in found.message
    within = Running(api_servers={API: "v1.36.0"}, kubelets={"wind": "v1.34.0"})
    assert kubernetes_problems("1.37.0", within) == []


def test_an_upgrade_interrupted_between_control_plane_nodes_resumes() -> None:
    """One API server and its node's kubelet already at the new minor, the rest not yet."""
    running = Running(
        api_servers={"fohn": "v1.36.0", "chequita": "v1.35.4"},
        kubelets={"fohn": "v1.36.0", "chequita": "v1.35.4", "wind": "v1.35.4"},
    )
    assert kubernetes_problems("1.36.0", running) == []


def test_nothing_is_refused_on_what_is_not_known() -> None:
    assert kubernetes_problems("1.36.3", Running()) == []
    assert etcd_problems("3.6.0", Running()) == []
    assert ceph_problems("19.2.0", Running()) == []


# -- etcd --------------------------------------------------------------------


def test_etcd_refuses_a_skipped_minor_and_lets_the_next_through() -> None:
    running = Running(etcd={"fohn": "3.4.23", "chequita": "3.4.23", "wind": "3.4.23"})
    (found,) = etcd_problems("3.6.0", running)
    assert (found.rule, found.field) == ("minor-skip", "cluster.etcd.version")
    assert found.message.startswith("cluster.etcd.version: 3.6.0 skips a minor version")
    assert "chequita, fohn, wind runs 3.4.23" in found.message
    assert etcd_problems("3.5.9", running) == []


def test_etcd_refuses_a_downgrade_and_a_major_change() -> None:
    running = Running(etcd={"fohn": "3.5.9", "wind": "3.5.9"})
    assert rules(etcd_problems("3.4.23", running)) == ["downgrade"]
    assert rules(etcd_problems("4.0.0", running)) == ["major-change"]
    assert etcd_problems("3.5.9", running) == []


def test_etcd_skew_is_counted_from_its_oldest_member() -> None:
    running = Running(etcd={"fohn": "3.5.9", "wind": "3.4.23"})
    (found,) = etcd_problems("3.6.0", running)
    assert found.rule == "minor-skip" and "wind runs 3.4.23" in found.message


# -- Ceph --------------------------------------------------------------------


def test_ceph_refuses_more_than_two_major_releases_and_lets_two_through() -> None:
    octopus = Running(ceph={"mon": ("15.2.17",), "osd": ("15.2.17",)})
    (found,) = ceph_problems("18.2.4", octopus)
    assert (found.rule, found.field) == ("release-skip", "cluster.ceph.version")
    assert "18.2.4 (reef) is 3 major releases after 15.2.17 (octopus)" in found.message
    pacific = Running(ceph={"mon": ("16.2.15",), "osd": ("16.2.15",)})
    assert ceph_problems("18.2.4", pacific) == []


def test_ceph_counts_from_its_oldest_daemons_and_names_their_kind() -> None:
    running = Running(ceph={"mon": ("16.2.15",), "mgr": ("16.2.15",), "osd": ("15.2.17",)})
    (found,) = ceph_problems("18.2.4", running)
    assert "which the osd daemons run" in found.message


def test_ceph_refuses_a_downgrade() -> None:
    running = Running(ceph={"mon": ("17.2.7",)})
    (found,) = ceph_problems("16.2.15", running)
    assert found.rule == "downgrade"
    assert "16.2.15 (pacific) is older than 17.2.7 (quincy)" in found.message
    assert ceph_problems("17.2.7", running) == []


def test_every_component_is_checked_in_the_order_the_layers_run() -> None:
    running = Running(
        api_servers={API: "v1.34.0"}, etcd={"fohn": "3.4.23"}, ceph={"mon": ("15.2.17",)}
    )
    found = problems(Wanted(kubernetes="1.36.0", etcd="3.6.0", ceph="18.2.0"), running)
    assert [p.field for p in found] == [
        "cluster.etcd.version",
        "cluster.kubernetes.version",
        "cluster.ceph.version",
    ]
    assert problems(Wanted(kubernetes="1.35.0", etcd="3.5.0", ceph="17.2.0"), running) == []
