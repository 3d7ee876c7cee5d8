"""What a bootstrap layer is: a name and a pure function from the inventory to plans.

A layer never talks to a device, nor reads a file. It yields plans one at a
time; the runner applies each before asking for the next, so a later plan can
be built from what an earlier one made (certificates are minted by one plan,
then read to make the next plan's file pushes): the layer names the facts it
reads (``facts``), a plan names those it makes (``Plan.makes``), and
``ctx.facts`` gathers each when the layer first reads it and again after a
plan that makes it is applied (``engine/facts.py``). Every side
effect is an action, carried out by the applier for its kind (``engine/appliers.py``).

The engine owns this protocol; ``labctl/layers/`` implements it, one module per
layer, and lists them in bootstrap order in ``LAYERS``. A layer may also name the
lab checks it needs (``lab_checks``, ids of ``inventory/checks.lab_check``): ``labctl
plan`` and ``bootstrap`` run those before any layer, where the lab kind is known.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from labctl.engine.facts import F, Facts
from labctl.inventory.model import Inventory
from labctl.platform import Platform, RealPlatform

if TYPE_CHECKING:
    from labctl.engine.plan import Plan


@dataclass(frozen=True)
class LayerContext:
    """Everything a layer may plan from, and where the run keeps its state."""

    inventory: Inventory
    inventory_path: Path
    state_dir: Path
    dry_run: bool = False
    # What earlier plans learnt, as typed facts (engine/facts.py), gathered when first read.
    facts: Facts = field(default_factory=Facts)
    # Prefixed to every path a layer writes on a node; "{node}" becomes the server's
    # name. Empty on real labs; tests point every node at one loopback sshd and give
    # each node its own directory there.
    node_root: str = ""
    # How the lab runs what the inventory describes (labctl/platform.py): the CLI
    # chooses it; a simulated lab's says what stands in for what.
    platform: Platform = field(default_factory=RealPlatform)

    @property
    def base_dir(self) -> Path:
        """Relative paths in the inventory (PKI store, secret files) start here."""
        return self.inventory_path.parent

    def on_node(self, node: str, path: str) -> str:
        """``path`` as written on ``node``, under ``node_root`` when one is set."""
        return self.node_root.replace("{node}", node) + path

    def fact(self, kind: type[F], otherwise: F | None = None) -> F:
        """The fact of class ``kind``; a pending one as ``engine/facts.py`` says."""
        return self.facts.read(kind, self, otherwise)


class Layer(Protocol):
    @property
    def name(self) -> str:
        """The layer's name in the bootstrap order (``--only``, ``--from``)."""
        ...

    def plans(self, ctx: LayerContext) -> Iterator[Plan]: ...


@dataclass(frozen=True)
class NotBuilt:
    """A place in the bootstrap order whose layer this version of labctl does not have."""

    name: str

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        return iter(())


def select_layers(
    layers: Sequence[Layer], only: Sequence[str] | None, start: str | None
) -> list[Layer]:
    """``layers`` (in bootstrap order) cut down by --only and --from.

    Raises ValueError naming the known layers for a name that is not one.
    """
    names = [layer.name for layer in layers]
    for name in [*(only or []), *([start] if start else [])]:
        if name not in names:
            raise ValueError(f"unknown layer '{name}'; layers are: {', '.join(names)}")
    chosen = list(layers)
    if start:
        chosen = chosen[names.index(start) :]
    if only:
        chosen = [layer for layer in chosen if layer.name in only]
    return chosen
