"""Runs layers in bootstrap order through the executor, under the state-dir lock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from labctl.engine.executor import Connector, Executor, Options, ProgressSink, RunReport
from labctl.engine.journal import Journal, RunLock
from labctl.layers import Layer, LayerContext


@dataclass
class LayerOutcome:
    name: str
    status: str  # "applied", "not-built", "failed", "dry-run"
    reports: list[RunReport] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.name,
            "status": self.status,
            "plans": [r.as_dict() for r in self.reports],
        }


def run_layers(
    names: list[str],
    layers: dict[str, Layer],
    ctx: LayerContext,
    connector: Connector,
    options: Options,
    progress: ProgressSink | None = None,
    announce: Callable[[str], None] = lambda _: None,
) -> list[LayerOutcome]:
    """Apply ``names`` in order; stop after the first layer that fails."""
    outcomes: list[LayerOutcome] = []
    with RunLock(ctx.state_dir):
        journal = Journal(ctx.state_dir)
        for name in names:
            layer = layers.get(name)
            if layer is None:
                announce(f"{name}: not built yet in this version of labctl; skipped")
                outcomes.append(LayerOutcome(name, "not-built"))
                continue
            outcome = LayerOutcome(name, "dry-run" if options.dry_run else "applied")
            executor = Executor(
                connector, journal, options, layer.handlers(ctx), progress, layer.observers(ctx)
            )
            try:
                for plan in layer.plans(ctx):
                    if options.dry_run:
                        announce(plan.render_tree())
                    report = executor.apply(plan)
                    outcome.reports.append(report)
                    announce(report.summary())
                    if not report.ok:
                        outcome.status = "failed"
                        break
            finally:
                layer.close()
            outcomes.append(outcome)
            if outcome.status == "failed":
                announce(f"{name} failed; later layers were not run")
                break
    return outcomes
