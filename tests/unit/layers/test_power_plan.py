"""The power layer's plan for the reference inventory, against its reviewed golden file."""

from __future__ import annotations

import json
from pathlib import Path

from labctl.engine.layer import LayerContext
from labctl.inventory import require_inventory
from labctl.layers.power import PowerLayer
from tests.conftest import REFERENCE, assert_golden


def test_power_plan_matches_golden(tmp_path: Path) -> None:
    ctx = LayerContext(require_inventory(REFERENCE), REFERENCE, tmp_path / "state")
    plans = [plan.as_dict() for plan in PowerLayer().plans(ctx)]
    assert_golden("plan-power.json", json.dumps(plans, indent=2) + "\n")
