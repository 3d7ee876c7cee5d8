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
layer, and lists them in bootstrap order in ``LAYERS``. It also owns the one
protocol for how the lab differs from what its inventory says (``Platform``): its
methods both decide (how etcd runs) and hand a layer the plan pieces only the
simulated lab has (BIRD on the nodes, stand-in definitions, imported images), so a
layer adds what its platform returns and never branches to pick a stand-in. The
protocol lives here because those pieces are actions planned in a context; the real
answers are ``labctl/platform.py``'s (below the engine, naming no action: its plan
pieces are empty), the simulated lab's ``labctl/sim/platform.py``'s (above it).

A layer may also name the lab checks it needs (``lab_checks``, ids of
``inventory/checks.lab_check``): ``labctl plan`` and ``bootstrap`` run those before
any layer, where the lab kind is known.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from labctl.engine.actions import Action
from labctl.engine.facts import F, Facts
from labctl.inventory.model import Ceph, Inventory, Server
from labctl.platform import NodeRuntime, RealPlatform

if TYPE_CHECKING:
    from labctl.engine.plan import Plan


class Platform(Protocol):
    """How the lab under labctl runs what the inventory describes (``labctl/platform.py``
    says why; one method per way a simulated lab differs)."""

    def etcd_runtime(self, inventory: Inventory) -> str:
        """How etcd members run: ``container`` or ``host``."""
        ...

    def monitoring_runtime(self, inventory: Inventory) -> str:
        """How the monitoring programs run: ``container`` or ``host``."""
        ...

    def kube_runtime(self, inventory: Inventory) -> str:
        """How the control plane runs: ``static-pods``, ``host`` (units), or ``pods``
        (static pods from images labctl builds and imports; the simulated lab's)."""
        ...

    def kube_bin_dir(self, inventory: Inventory) -> str:
        """The folder on every node for the Kubernetes binaries ("{version}" unexpanded)."""
        ...

    def node_leftovers(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(units, paths) the platform's own pieces put on a node beyond what the layers
        render, which ``labctl reset`` removes with the rest (none on a real lab)."""
        ...

    def node_runtime(self, inventory: Inventory, runtime: str) -> NodeRuntime:
        """What every node runs around the kubelet beyond the inventory's: a
        containerd of labctl's, the kubelet's wrapper and settings, kube-proxy's
        (empty on a real lab; where nodes share one kernel, what that forces)."""
        ...

    def image_imports(self, ctx: LayerContext, server: Server) -> Sequence[Action]:
        """What puts the control plane's images on ``server`` before its kubelet starts
        (empty: the nodes pull them from their registry)."""
        ...

    def etcd_images(self, ctx: LayerContext, server: Server) -> Sequence[Action]:
        """What puts the etcd image the inventory names on ``server`` before its member
        restarts (empty: the node pulls it from its registry when the unit starts)."""
        ...

    def node_bgp(self, ctx: LayerContext, server: Server) -> Sequence[Action]:
        """What configures BGP on ``server`` in the calico layer (empty: calico-node,
        from Calico's manifest in the calico-resources layer, does it)."""
        ...

    def node_bgp_agent(self, ctx: LayerContext, server: Server) -> Sequence[Action]:
        """What runs calico-node's programs on ``server`` once Calico's objects are on
        the API, in the calico-resources layer (empty: calico-node's pods, from Calico's
        manifest; the simulated lab: its confd and CNI plugin as the node's own)."""
        ...

    def confd_takes_over(self) -> bool:
        """Whether the BIRD configuration ``node_bgp`` writes gives way to calico-node's
        confd once ``node_bgp_agent`` runs it (then the blocks the nodes announce are the
        ones Calico's IPAM gave them, wherever the API has some)."""
        ...

    def node_bgp_query(self) -> tuple[str, ...] | None:
        """The command that prints a node's BIRD protocols on the node (None: calico-node's
        BIRD is inside its container, and only the switches are asked)."""
        ...

    def calico_kinds(self, inventory: Inventory) -> list[dict[str, Any]]:
        """The definitions of Calico's kinds applied when the inventory names no manifest
        (empty: a real lab without one is refused, LAB120), and any other object the
        platform's own calico-node programs need on the API (their identity)."""
        ...

    def bgp_stand_in(self) -> str | None:
        """What configures BGP on the nodes: None for calico-node (from Calico's
        manifest), else the BIRD 1.6 binary the nodes run as a unit in its place."""
        ...

    def switch_platform(self) -> str | None:
        """The platform every switch runs whatever the inventory says (None: as it says)."""
        ...

    def ipmi_exporter_workarounds(self) -> tuple[str, ...]:
        """FreeIPMI workaround flags the IPMI exporter needs for every BMC (empty: none)."""
        ...

    def ceph(self, settings: Ceph) -> Ceph:
        """Ceph's settings as this lab runs them (its runtime, extra config keys)."""
        ...

    def boot_netns(self) -> str | None:
        """The network namespace the boot service serves from (None: the host's)."""
        ...

    def differences(self) -> tuple[str, ...]:
        """One line per stand-in, saying what stands in for what (empty on a real lab)."""
        ...


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
