"""`labctl monitoring status`'s reading of Prometheus's API, against the inventory (pure),
and the durations the layer's wait is sized from."""

from __future__ import annotations

from typing import Any

import pytest

from labctl.inventory import require_inventory
from labctl.monitoring.status import lab_status, seconds, wait_seconds
from labctl.render.monitoring.targets import targets
from tests.conftest import REFERENCE


def _targets_doc(health: dict[tuple[str, str], str]) -> dict[str, Any]:
    active = [
        {"labels": {"job": job, "instance": inst}, "health": h,
         "lastError": "" if h == "up" else "connection refused"}
        for (job, inst), h in health.items()
    ]  # fmt: skip
    return {"status": "success", "data": {"activeTargets": active}}


def test_every_implied_target_up_and_nothing_firing_is_ok() -> None:
    inv = require_inventory(REFERENCE)
    doc = _targets_doc({(t.job, t.instance): "up" for t in targets(inv)})
    found = lab_status(inv, "http://x", doc, {"data": {"alerts": []}})
    assert found.not_up == [] and found.as_dict()["ok"]
    assert found.by_job()["node"] == {"up": ["fohn", "chequita", "wind"]}


def test_a_target_down_a_target_missing_and_a_firing_alert_are_named() -> None:
    inv = require_inventory(REFERENCE)
    health = {(t.job, t.instance): "up" for t in targets(inv)}
    health[("node", "wind")] = "down"
    del health[("ipmi", "chequita")]  # an old prometheus.yml that lacks it
    health[("node", "stranger")] = "up"  # not the inventory's: not reported
    alerts = {
        "data": {
            "alerts": [
                {"labels": {"alertname": "NodeDown", "instance": "wind", "severity": "critical"},
                 "annotations": {"summary": "wind is down"}, "state": "firing",
                 "activeAt": "2026-12-06T20:00:00Z"},
                {"labels": {"alertname": "BmcNotAnswering", "instance": "fohn"},
                 "annotations": {}, "state": "pending"},
            ]
        }
    }  # fmt: skip
    found = lab_status(inv, "http://x", _targets_doc(health), alerts)
    assert [(t.job, t.instance, t.health) for t in found.not_up] == [
        ("node", "wind", "down"),
        ("ipmi", "chequita", "missing"),
    ]
    assert [a.name for a in found.alerts] == ["NodeDown"]  # pending is not firing
    text = found.text()
    assert "node                 2/3 up  (down: wind)" in text
    assert "NodeDown [critical] wind: wind is down" in text
    assert not found.as_dict()["ok"]
    assert "stranger" not in text


@pytest.mark.parametrize(
    ("duration", "value"), [("30s", 30), ("1h30m", 5400), ("500ms", 0.5), ("15d", 1296000)]
)
def test_prometheus_durations(duration: str, value: float) -> None:
    assert seconds(duration) == value


@pytest.mark.parametrize("duration", ["", "30", "1x", "s30", "30s "])
def test_not_a_duration_is_refused(duration: str) -> None:
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        seconds(duration)


def test_the_layer_waits_two_scrape_intervals_and_a_minute() -> None:
    assert wait_seconds(require_inventory(REFERENCE)) == 120.0  # 30 s by default


def test_a_switch_whose_bgp_no_target_reads_is_said_not_watched() -> None:
    # kek-core (FRR, read over SSH) holds three sessions the inventory implies and no
    # target reads them; astrid is read over SNMP; tor holds none.
    inv = require_inventory(REFERENCE)
    doc = _targets_doc({(t.job, t.instance): "up" for t in targets(inv)})
    found = lab_status(inv, "http://x", doc, {"data": {"alerts": []}})
    said = found.as_dict()
    assert said["ok"] and [u["switch"] for u in said["unwatched_bgp"]] == ["kek-core"]
    assert said["unwatched_bgp"][0]["why"].startswith("read over SSH (ssh-frr), not SNMP")
    assert "Not watched: kek-core's BGP sessions, read over SSH (ssh-frr)" in found.text()
    assert {t.instance for t in targets(inv) if t.job == "snmp-bgp"} == {"astrid"}
