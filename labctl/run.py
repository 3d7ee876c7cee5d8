"""A bootstrap run assembled above the engine: the layers, the appliers they need, the secrets.

The engine (``labctl/engine/``) knows actions, plans, the executor, the journal
and the applier protocol, and imports no domain package. This module is where
the domain meets it: it builds one run's appliers (SSH to the nodes through
``labctl/targets.py``, the BMCs through ``labctl/power/applier.py``, the local
work every layer in ``LAYERS`` declares) around the run's ``SecretBox``, and
hands them to the engine's ``run_layers``, which closes them at the end.

A layer declares its local work with ``local_work()``: the ``LocalStep`` names
it emits and the work class for each. The table is read when a step first asks
for one, so a run without local steps imports none of that work's code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

from labctl.engine.appliers import Appliers, Connector, LocalApplier, LocalWorkFactory, SshApplier
from labctl.engine.executor import Options, ProgressSink
from labctl.engine.layer import Layer, LayerContext
from labctl.engine.runner import LayerOutcome
from labctl.engine.runner import run_layers as run_on


@runtime_checkable
class DeclaresLocalWork(Protocol):
    """A layer whose plans hold ``LocalStep``s: the work for each step name it emits."""

    def local_work(self) -> Mapping[str, LocalWorkFactory]: ...


class DeclaredWork(Mapping[str, LocalWorkFactory]):
    """The local work of ``layers`` by step name, read from them on first use.

    Two layers may declare the same step name for the same work (calico's and
    calico-resources' wait for BGP sessions); for different work it is a
    programming error, raised on first use.
    """

    def __init__(self, layers: Sequence[Layer]) -> None:
        self._layers = layers
        self._works: dict[str, LocalWorkFactory] | None = None

    def _all(self) -> dict[str, LocalWorkFactory]:
        if self._works is None:
            works: dict[str, LocalWorkFactory] = {}
            owner: dict[str, str] = {}
            for layer in self._layers:
                if not isinstance(layer, DeclaresLocalWork):
                    continue
                for name, make in layer.local_work().items():
                    if name in works and works[name] is not make:
                        raise ValueError(f"{owner[name]} and {layer.name} both declare {name}")
                    works[name], owner[name] = make, layer.name
            self._works = works
        return self._works

    def __getitem__(self, name: str) -> LocalWorkFactory:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def run_layer_set(layers: Sequence[Layer]) -> list[Layer]:
    """``LAYERS`` and any other layer in ``layers``: every layer whose work a run may need.

    A run of one layer (``--only etcd``) still carries out any kind of action,
    so its appliers hold every layer's local work; a layer that is not in
    ``LAYERS`` (a test's) adds its own.
    """
    from labctl.layers import LAYERS

    known = {layer.name for layer in LAYERS}
    return [*LAYERS, *(layer for layer in layers if layer.name not in known)]


def standard_appliers(
    ctx: LayerContext, connector: Connector | None = None, layers: Sequence[Layer] = ()
) -> Appliers:
    """The appliers of a bootstrap run; ``connector`` replaces the inventory's SSH targets."""
    from labctl.power.applier import BmcApplier
    from labctl.secrets.box import SecretBox
    from labctl.targets import InventoryConnector

    secrets = SecretBox(ctx.base_dir, ctx.state_dir)
    return Appliers(
        (
            SshApplier(connector or InventoryConnector(ctx.inventory, ctx.base_dir), secrets),
            BmcApplier(ctx),
            LocalApplier(ctx, DeclaredWork(run_layer_set(layers))),
        ),
        secrets,
    )


def run_layers(
    layers: Sequence[Layer],
    ctx: LayerContext,
    options: Options,
    *,
    appliers: Appliers | None = None,
    progress: ProgressSink | None = None,
    announce: Callable[[str], None] = lambda _: None,
) -> list[LayerOutcome]:
    """The engine's ``run_layers``, with this run's appliers (``standard_appliers``) by default.

    They are built once the engine holds the state directory's lock.
    """
    return run_on(
        layers,
        ctx,
        options,
        appliers=appliers or (lambda: standard_appliers(ctx, layers=layers)),
        progress=progress,
        announce=announce,
        graph=layer_graph(),
    )


def layer_graph() -> dict[str, tuple[str, ...]]:
    """What each of ``LAYERS`` needs (``engine/graph.py``), checked: a need that is no
    layer, a cycle, or a need later in the order is a programming error, raised here."""
    from labctl.engine.graph import check, declared_needs
    from labctl.layers import LAYERS

    needs = declared_needs(LAYERS)
    check([layer.name for layer in LAYERS], needs)
    return needs


def layer_waits(layers: Sequence[Layer]) -> dict[str, tuple[str, ...]]:
    """What each of ``layers`` (a run's, chosen from ``LAYERS``) waits for among them."""
    from labctl.engine.graph import declared_needs, waits_for

    every = {**layer_graph(), **declared_needs(layers)}
    return waits_for(list(every), every, [layer.name for layer in layers])
