"""Decoding Ceph's own JSON, recorded from Ceph 16.2.15 on the simulated reference lab."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labctl.ceph.cluster import Health, decode_status
from tests.conftest import ROOT

RECORDED = ROOT / "tests" / "fixtures" / "ceph"


def answer(name: str) -> Any:
    return json.loads((RECORDED / f"{name}.json").read_text())


def test_a_healthy_reference_cluster_decodes() -> None:
    report = decode_status(
        answer("status"), answer("quorum_status"), answer("osd-tree"), answer("df")
    )
    assert report.health.status == "HEALTH_OK" and report.health.checks == ()
    assert report.mons == ["fohn", "chequita", "wind"] == report.quorum
    assert report.out_of_quorum == []
    assert report.osds_by_host == {
        "chequita": {"osds": 3, "up": 3, "in": 3},
        "fohn": {"osds": 7, "up": 7, "in": 7},
        "wind": {"osds": 6, "up": 6, "in": 6},
    }
    assert {p["name"] for p in report.pools} == {
        "device_health_metrics",
        "rbd",
        "cephfs_data",
        "cephfs_metadata",
    }
    assert sum(report.pgs_by_state.values()) == report.num_pgs > 0
    assert json.loads(json.dumps(report.as_dict()))["health"] == "HEALTH_OK"


def test_health_checks_become_sentences() -> None:
    health = Health.decode(
        {
            "status": "HEALTH_WARN",
            "checks": {
                "OSD_DOWN": {"severity": "HEALTH_WARN", "summary": {"message": "6 osds down"}},
                "MON_DOWN": {
                    "severity": "HEALTH_WARN",
                    "summary": {"message": "1/3 mons down, quorum fohn,chequita"},
                },
            },
        }
    )
    assert [c.sentence() for c in health.checks] == [
        "MON_DOWN (HEALTH_WARN): 1/3 mons down, quorum fohn,chequita",
        "OSD_DOWN (HEALTH_WARN): 6 osds down",
    ]


def test_a_monitor_out_of_quorum_is_named(tmp_path: Path) -> None:
    quorum = answer("quorum_status")
    quorum["quorum_names"] = ["fohn", "chequita"]
    report = decode_status(answer("status"), quorum, answer("osd-tree"), answer("df"))
    assert report.out_of_quorum == ["wind"]
