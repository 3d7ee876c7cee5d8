"""`labctl ceph status` as people and programs read it, on answers recorded from Ceph 16.2.15."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from labctl.ceph import cluster as ceph_session
from labctl.cli.main import app
from tests.conftest import REFERENCE
from tests.unit.ceph.test_ceph_session import answer

runner = CliRunner()


class Recorded:
    """A CephSession that answers from the recorded JSON (one monitor out of quorum)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def status(self) -> ceph_session.CephStatus:
        status, quorum = answer("status"), answer("quorum_status")
        quorum["quorum_names"] = ["fohn", "chequita"]
        status["health"] = {
            "status": "HEALTH_WARN",
            "checks": {
                "MON_DOWN": {
                    "severity": "HEALTH_WARN",
                    "summary": {"message": "1/3 mons down, quorum fohn,chequita"},
                }
            },
        }
        return ceph_session.decode_status(status, quorum, answer("osd-tree"), answer("df"))

    def __enter__(self) -> Recorded:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.fixture(autouse=True)
def recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ceph_session, "CephSession", Recorded)


def test_status_json_says_what_is_wrong_and_exits_1() -> None:
    done = runner.invoke(app, ["ceph", "status", "-i", str(REFERENCE), "-o", "json"])
    assert done.exit_code == 1
    report = json.loads(done.stdout)
    assert report["health"] == "HEALTH_WARN"
    assert report["out_of_quorum"] == ["wind"]
    assert report["checks"][0]["name"] == "MON_DOWN"
    assert report["osds_by_host"]["fohn"] == {"osds": 7, "up": 7, "in": 7}


def test_status_text_names_each_check_and_the_monitors() -> None:
    done = runner.invoke(app, ["ceph", "status", "-i", str(REFERENCE)], env={"COLUMNS": "200"})
    assert done.exit_code == 1
    assert "MON_DOWN (HEALTH_WARN): 1/3 mons down, quorum fohn,chequita" in done.stdout
    assert "mons: fohn, chequita in quorum; out of quorum: wind" in done.stdout
    assert "active+clean" in done.stdout
