"""Runs layers through one executor, under the state directory's lock: each as soon as
the layers it needs are done (``engine/graph.py``), independent ones at once.

The run owns the appliers: it is handed one set (``labctl/run.py`` assembles
them above the engine: SSH to the nodes, the BMCs, every layer's local work),
hands every layer's plans to the same executor, and closes them all at the end,
whatever happened. It tells the run's facts (``engine/facts.py``) which ones
the layer being planned names, so its first read gathers them, and which ones
each applied plan made, so the next read gathers those again; a dry run
applies nothing and so changes no fact.

At a layer's start it plans the layer once more, ahead, from the facts as they stand
(``ahead``), applying nothing: the executor reads each node's planned steps in its
first survey of the layer (``LayerAhead`` in ``engine/executor.py``), so a layer where
nothing changes costs one survey per node, not one per plan.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labctl.engine.appliers import Appliers
from labctl.engine.executor import Executor, LayerAhead, Options, ProgressSink, RunReport
from labctl.engine.facts import FactPending
from labctl.engine.graph import check, declared_needs, run_graph, waits_for
from labctl.engine.journal import Journal, RunLock
from labctl.engine.layer import Layer, LayerContext, NotBuilt
from labctl.engine.plan import Plan


@dataclass
class LayerOutcome:
    name: str
    # "applied", "not-built", "failed", "dry-run"; "stopped": it ran beside a layer that
    # failed, and stopped before its next plan (what it applied is in the journal).
    status: str
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

    ctx.facts.expect(getattr(layer, "facts", ()), layer.name)
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


def ahead(layer: Layer, ctx: LayerContext) -> list[Plan]:
    """The layer's plans as the facts stand now, none applied, to survey its nodes once.

    A fact an earlier plan of the pass makes is read as it stands, into a scratch board
    (``Facts.ahead``): the run's board keeps it only as it is once that plan has run.
    The pass ends quietly where planning fails (a pending fact: the layer's own
    planning meets it in its turn, and says it); what a dry run planned as if is said
    by that planning too, not by this one."""
    kept = list(ctx.facts.assumed)
    found: list[Plan] = []
    made: set[type] = set()
    # A dry run forgets no fact: its reads are the board's, as its own planning's are.
    ctx.facts.ahead(None if ctx.dry_run else frozenset())
    ctx.facts.planning_ahead = True
    try:
        for plan in layer.plans(ctx):
            found.append(plan)
            made.update(plan.makes)
            if not ctx.dry_run:
                ctx.facts.ahead(frozenset(made))
    except Exception:  # the layer's own planning raises it in its turn
        pass
    finally:
        ctx.facts.ahead(None)
        ctx.facts.planning_ahead = False
        ctx.facts.assumed[:] = kept
    return found


class _InOrder:
    """The layers' messages, each said whole, in bootstrap order: the first layer not yet
    ended says its own as they come; a later one's are kept until every layer before it
    has ended (independent layers run at once, and their lines must not interleave)."""

    def __init__(self, order: Sequence[str], say: Callable[[str], None]) -> None:
        self.order = list(order)
        self.say = say
        self.kept: dict[str, list[str]] = {name: [] for name in order}
        self.ended: set[str] = set()
        self.head = 0
        self.lock = threading.Lock()

    def __call__(self, layer: str, message: str) -> None:
        with self.lock:
            if self.head < len(self.order) and self.order[self.head] == layer:
                self.say(message)
            else:
                self.kept[layer].append(message)

    def end(self, layer: str) -> None:
        with self.lock:
            self.ended.add(layer)
            while self.head < len(self.order) and self.order[self.head] in self.ended:
                self.head += 1
                if self.head < len(self.order):
                    self._flush(self.order[self.head])

    def close(self) -> None:
        with self.lock:
            for name in self.order:
                self._flush(name)

    def _flush(self, layer: str) -> None:
        for message in self.kept[layer]:
            self.say(message)
        self.kept[layer].clear()


def run_layers(
    layers: Sequence[Layer],
    ctx: LayerContext,
    options: Options,
    *,
    appliers: Appliers | Callable[[], Appliers],
    progress: ProgressSink | None = None,
    announce: Callable[[str], None] = lambda _: None,
    graph: Mapping[str, Sequence[str]] | None = None,
) -> list[LayerOutcome]:
    """Apply ``layers``, each once what it needs is done (``engine/graph.py``), at most
    ``options.layers_at_once`` at a time; once one fails none is started, and the
    others stop after the plan they are applying.

    ``appliers``: the run's, or what builds them once the state directory is
    locked; they are closed when the run ends, whoever built them. ``graph``: every
    layer's needs the run knows (``LAYERS``'), for what the chosen ones wait for through
    layers left out; each of ``layers`` that declares ``needs`` says its own.
    Outcomes are in bootstrap order, of the layers that started.
    """
    own = declared_needs(layers)
    # A need the run knows nothing of is a layer left out (``labctl/run.py`` checks
    # ``LAYERS`` for needs that are no layer); a cycle is refused before anything runs.
    every = {**(graph or {}), **own}
    for needs in list(every.values()):
        for need in needs:
            every.setdefault(need, ())
    check(list(every), every, ordered=False)
    order = [layer.name for layer in layers]
    waits = waits_for(list(every), every, order)
    by_name = {layer.name: layer for layer in layers}
    outcomes: dict[str, LayerOutcome] = {}
    stop = threading.Event()
    said = _InOrder(order, announce)
    with (
        RunLock(ctx.state_dir),
        appliers if isinstance(appliers, Appliers) else appliers() as run_appliers,
    ):
        executor = Executor(run_appliers, Journal(ctx.state_dir), options, progress)

        def run_one(name: str) -> bool:
            try:
                return _run_layer(by_name[name], ctx, options, executor, outcomes, stop, said)
            finally:
                ctx.facts.expect((), name)  # its facts are no longer read for it
                said.end(name)

        try:
            run_graph(order, waits, run_one, options.layers_at_once, stop)
        finally:
            said.close()
    return [outcomes[name] for name in order if name in outcomes]


def _run_layer(
    layer: Layer,
    ctx: LayerContext,
    options: Options,
    executor: Executor,
    outcomes: dict[str, LayerOutcome],
    stop: threading.Event,
    said: _InOrder,
) -> bool:
    """One layer's plans through ``executor``, until one fails or ``stop`` is set."""

    def announce(message: str) -> None:
        said(layer.name, message)

    if isinstance(layer, NotBuilt):
        announce(f"{layer.name}: not built yet in this version of labctl; skipped")
        outcomes[layer.name] = LayerOutcome(layer.name, "not-built")
        return True
    outcome = LayerOutcome(layer.name, "dry-run" if options.dry_run else "applied")
    outcomes[layer.name] = outcome
    planned: LayerAhead | None = None
    for plan in _plans(layer, ctx, options.dry_run, outcome, announce):
        if planned is None:  # the layer's facts are named now (``_plans``)
            planned = LayerAhead(ahead(layer, ctx))
        if stop.is_set():
            outcome.status = "stopped"
            announce(f"{layer.name} stopped before {plan.layer}: another layer failed")
            return False
        if options.dry_run:
            announce(plan.render_tree())
        report = executor.apply(plan, planned)
        outcome.reports.append(report)
        announce(report.summary())
        if not report.ok:
            outcome.status = "failed"
            break
        if not options.dry_run:  # what it made is read afresh, before the layer plans on
            ctx.facts.changed(plan.makes)
    if outcome.status == "failed":
        announce(f"{layer.name} failed; later layers were not run")
        return False
    return True
