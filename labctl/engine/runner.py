"""Runs layers in bootstrap order through one executor, under the state directory's lock.

The run owns the appliers: it is handed one set (``labctl/run.py`` assembles
them above the engine: SSH to the nodes, the BMCs, every layer's local work),
hands every layer's plans to the same executor, and closes them all at the end,
whatever happened. It tells the run's facts (``engine/facts.py``) which ones
the layer being planned names, so its first read gathers them, and which ones
each applied plan made, so the next read gathers those again; a dry run
applies nothing and so changes no fact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from labctl.engine.appliers import Appliers
from labctl.engine.executor import Executor, Options, ProgressSink, RunReport
from labctl.engine.facts import FactPending
from labctl.engine.journal import Journal, RunLock
from labctl.engine.layer import Layer, LayerContext, NotBuilt
from labctl.engine.plan import Plan


@dataclass
class LayerOutcome:
    name: str
    status: str  # "applied", "not-built", "failed", "dry-run"
    reports: list[RunReport] = field(default_factory=list)
    # What a dry run could not plan yet, or planned as if (engine/facts.py).
    pending: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "layer": self.name,
            "status": self.status,
            "plans": [r.as_dict() for r in self.reports],
        }
        if self.pending:
            found["pending"] = list(self.pending)
        return found


def _plans(
    layer: Layer,
    ctx: LayerContext,
    dry_run: bool,
    outcome: LayerOutcome,
    announce: Callable[[str], None],
) -> Iterator[Plan]:
    """The layer's plans, its facts gathered as it reads them; a dry run's pending facts
    said once.

    In a dry run a pending fact ends the layer with one line; in a real run it is
    the error it is (engine/facts.py)."""

    def say(line: str) -> None:
        outcome.pending.append(line)
        announce(f"{layer.name}: {line}")

    ctx.facts.expect(getattr(layer, "facts", ()))
    plans = layer.plans(ctx)
    while True:
        try:
            plan = next(plans)
        except StopIteration:
            break
        except FactPending as exc:
            if not dry_run:
                raise
            say(f"the rest is planned once {exc.plan} has run ({exc.why})")
            break
        finally:
            for line in ctx.facts.take_assumed():
                say(line)
        yield plan


def run_layers(
    layers: Sequence[Layer],
    ctx: LayerContext,
    options: Options,
    *,
    appliers: Appliers | Callable[[], Appliers],
    progress: ProgressSink | None = None,
    announce: Callable[[str], None] = lambda _: None,
) -> list[LayerOutcome]:
    """Apply ``layers`` in order; stop after the first layer that fails.

    ``appliers``: the run's, or what builds them once the state directory is
    locked; they are closed when the run ends, whoever built them.
    """
    outcomes: list[LayerOutcome] = []
    with (
        RunLock(ctx.state_dir),
        appliers if isinstance(appliers, Appliers) else appliers() as run_appliers,
    ):
        executor = Executor(run_appliers, Journal(ctx.state_dir), options, progress)
        for layer in layers:
            if isinstance(layer, NotBuilt):
                announce(f"{layer.name}: not built yet in this version of labctl; skipped")
                outcomes.append(LayerOutcome(layer.name, "not-built"))
                continue
            outcome = LayerOutcome(layer.name, "dry-run" if options.dry_run else "applied")
            outcomes.append(outcome)
            for plan in _plans(layer, ctx, options.dry_run, outcome, announce):
                if options.dry_run:
                    announce(plan.render_tree())
                report = executor.apply(plan)
                outcome.reports.append(report)
                announce(report.summary())
                if not report.ok:
                    outcome.status = "failed"
                    break
                if not options.dry_run:  # what it made is read afresh, before the layer plans on
                    ctx.facts.changed(plan.makes)
            if outcome.status == "failed":
                announce(f"{layer.name} failed; later layers were not run")
                break
    return outcomes
