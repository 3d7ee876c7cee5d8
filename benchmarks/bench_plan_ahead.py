"""What the runner's pass ahead costs: one whole planning of a layer, no lab.

Run: PYTHONPATH=. python benchmarks/bench_plan_ahead.py [--repeat 15]

At a layer's start the runner plans the layer once more, applying nothing, so each
node is surveyed once per layer (``engine/runner.py``'s ``ahead``); that pass costs
one planning of the layer in CPU on every layer of a run, converged or not. This
plans the reference inventory's ceph, kubernetes and monitoring layers (the largest)
from the facts their unit tests give, ``--repeat`` times each, and prints the median.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from labctl.ceph.keys import CephKeys
from labctl.engine.facts import Facts
from labctl.engine.layer import Layer, LayerContext
from labctl.inventory import require_inventory
from labctl.layers.ceph import CephLayer
from labctl.layers.kubernetes import KubernetesLayer
from labctl.layers.monitoring import MonitoringLayer
from tests.conftest import REFERENCE
from tests.unit.layers import test_ceph_plan, test_kubernetes_plan, test_monitoring_plan


def timed(name: str, layer: Layer, ctx: LayerContext, repeat: int) -> None:
    walls: list[float] = []
    steps = 0
    for _ in range(repeat):
        start = time.perf_counter()
        plans = list(layer.plans(ctx))
        walls.append(time.perf_counter() - start)
        steps = sum(len(p.steps) for p in plans)
    print(
        f"{name}: {len(plans)} plans, {steps} steps: "
        f"median {statistics.median(walls) * 1000:.1f} ms of {repeat}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-plan-ahead-") as tmp:
        root = Path(tmp)
        inventory = require_inventory(REFERENCE)
        keys = CephKeys(tuple(sorted(test_ceph_plan.fixed_keys(inventory).items())))
        ceph = LayerContext(inventory, REFERENCE, root / "state", facts=Facts.of(keys))
        timed("ceph", CephLayer(), ceph, args.repeat)
        (root / "k").mkdir()
        timed("kubernetes", KubernetesLayer(), test_kubernetes_plan._ctx(root / "k"), args.repeat)
        (root / "m").mkdir()
        timed("monitoring", MonitoringLayer(), test_monitoring_plan._ctx(root / "m"), args.repeat)


if __name__ == "__main__":
    main()
