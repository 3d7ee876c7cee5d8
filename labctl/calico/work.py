"""The calico layer's local work: the fabric up, the resources applied, the Nodes Ready.

``calico.established`` asks the switches and nodes: every session Established
from both ends and every node's pod block in every peering switch's routing
table, within the hold time plus 30 s (a node that just started BIRD connects
within seconds; one that cannot is named). On a real lab only the switches are
asked (calico-node's BIRD is inside its container), and a switch session no
answer covers fails rather than passes. ``calico.resources`` and
``calico.nodes-ready`` ask the Kubernetes API (``calico/resources.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labctl.calico import resources, status
from labctl.calico.fabric import BgpSession
from labctl.errors import LabctlError
from labctl.kubernetes.api import KubeSession

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from labctl.engine.layer import LayerContext, Platform
    from labctl.inventory.model import Inventory

# A kubelet reports Ready on its next status update after the runtime found a CNI
# configuration (every 10 s by default); two updates and a margin.
NODES_READY_TIMEOUT = 60.0
# On a real lab calico-node must first be pulled (three images, a few hundred MB) and
# start on every node before it writes the CNI configuration.
REAL_NODES_READY_TIMEOUT = 600.0


def nodes_ready_timeout(stand_in: bool) -> float:
    """How long ``calico.nodes-ready`` waits: BIRD standing in, or calico-node pulled."""
    return NODES_READY_TIMEOUT if stand_in else REAL_NODES_READY_TIMEOUT


def established_timeout(ctx: LayerContext) -> float:
    """How long ``calico.established`` waits: the hold time and a margin."""
    return ctx.inventory.cluster.calico.hold_time + 30.0


# The subject of the calico-resources layer's ``calico.established``: the nodes run
# calico-node's BGP configuration by then, so the blocks are Calico's IPAM's.
BLOCKS_FROM_API = "calico-node"
# The subject of the calico layer's ``calico.established`` where calico-node's confd
# takes the nodes' BGP over: only the sessions with a switch are waited for there. A
# node's mesh peers are the Nodes whose BGP address confd read from the API, so a
# server joining a running lab (or rebuilt after a reset) is in the other nodes'
# mesh only after the calico-resources layer, which waits for the mesh (docs/calico.md).
SWITCHES_ONLY = "switches"


def _session(ctx: LayerContext, from_api: bool = False) -> BgpSession:
    return session_for(ctx.inventory, ctx.base_dir, ctx.platform, from_api)


def session_for(
    inventory: Inventory, base_dir: Path, platform: Platform, from_api: bool = False
) -> BgpSession:
    """The fabric as ``platform`` runs it: where calico-node runs (no BGP stand-in, or
    ``from_api``: its confd took over from the stand-in), the blocks each node must
    announce are the ones Calico's IPAM gave it, read from the API."""
    blocks: Callable[[], dict[str, list[str]] | None] | None = None
    stand_in: dict[str, list[str]] | None = None
    if platform.bgp_stand_in() is None or from_api:

        def blocks() -> dict[str, list[str]] | None:
            return resources.pod_blocks(KubeSession(inventory, base_dir))

    elif platform.confd_takes_over():

        def blocks() -> dict[str, list[str]] | None:
            # Calico's blocks once confd runs (the calico-resources layer started it);
            # before, with no API or no block claimed yet, the stand-in's (topology's).
            try:
                return resources.pod_blocks(KubeSession(inventory, base_dir)) or None
            except (LabctlError, OSError):
                return None

        # A node confd has not reached yet (one rebuilt after a reset keeps its Calico
        # block on the API) still announces the stand-in's block: that one will do.
        stand_in = status.stand_in_blocks_of(inventory)

    return BgpSession(
        inventory,
        base_dir,
        platform.node_bgp_query(),
        platform.switch_platform(),
        blocks,
        stand_in,
    )


class EstablishedWork:
    def __init__(self, subject: str = "") -> None:
        self.from_api = subject == BLOCKS_FROM_API
        self.mesh = subject != SWITCHES_ONLY

    def apply(self, ctx: LayerContext) -> bool:
        with _session(ctx, self.from_api) as session:
            session.wait_established(established_timeout(ctx), mesh=self.mesh)
        return False  # it changes nothing; it proves

    def observe(self, ctx: LayerContext) -> str | None:
        try:
            with _session(ctx, self.from_api) as session:
                found = session.status()
                if not self.mesh:
                    found = found.switch_side()
                problems = found.unread + found.problems
        except (LabctlError, OSError) as exc:  # a dry run reports; a dead peer is news
            return f"cannot read the fabric yet: {exc}"
        return f"not up yet: {problems[0]}" if problems else None


def _wanted(ctx: LayerContext) -> resources.Wanted:
    return resources.wanted(
        ctx.inventory,
        ctx.base_dir,
        stand_in_node=ctx.platform.bgp_stand_in() is not None,
        stand_in_kinds=ctx.platform.calico_kinds(ctx.inventory),
    )


class ResourcesWork:
    """``calico.resources``: Calico's definitions and labctl's resources on the API server."""

    def apply(self, ctx: LayerContext) -> bool:
        return bool(resources.apply(KubeSession(ctx.inventory, ctx.base_dir), _wanted(ctx)))

    def observe(self, ctx: LayerContext) -> str | None:
        want = _wanted(ctx)  # a bad manifest or a missing secret fails the dry run too
        try:
            found = resources.differing(KubeSession(ctx.inventory, ctx.base_dir), want)
        except LabctlError as exc:
            return f"the API cannot be asked yet ({exc}); every resource would be applied"
        return "; ".join(found) or None


class NodesReadyWork:
    """``calico.nodes-ready``: with the pod network configured, every Node turns Ready."""

    def apply(self, ctx: LayerContext) -> bool:
        timeout = nodes_ready_timeout(ctx.platform.bgp_stand_in() is not None)
        KubeSession(ctx.inventory, ctx.base_dir).wait_nodes_ready(timeout)
        return False  # a wait: it changes nothing

    def observe(self, ctx: LayerContext) -> str | None:
        try:
            not_ready = KubeSession(ctx.inventory, ctx.base_dir).not_ready_reasons()
        except LabctlError as exc:
            return f"the API cannot be asked yet ({exc})"
        return f"not Ready yet: {', '.join(not_ready)}" if not_ready else None
