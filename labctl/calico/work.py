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

from labctl.calico import resources
from labctl.calico.fabric import BgpSession
from labctl.errors import LabctlError
from labctl.kubernetes.api import KubeSession

if TYPE_CHECKING:
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


def _session(ctx: LayerContext) -> BgpSession:
    return session_for(ctx.inventory, ctx.base_dir, ctx.platform)


def session_for(inventory: Inventory, base_dir: Path, platform: Platform) -> BgpSession:
    """The fabric as ``platform`` runs it: where calico-node runs (no BGP stand-in), the
    blocks each node must announce are the ones Calico's IPAM gave it, read from the API."""
    blocks = None
    if platform.bgp_stand_in() is None:

        def blocks() -> dict[str, list[str]]:
            return resources.pod_blocks(KubeSession(inventory, base_dir))

    return BgpSession(
        inventory,
        base_dir,
        platform.node_bgp_query(),
        platform.switch_platform(),
        blocks,
    )


class EstablishedWork:
    def apply(self, ctx: LayerContext) -> bool:
        with _session(ctx) as session:
            session.wait_established(established_timeout(ctx))
        return False  # it changes nothing; it proves

    def observe(self, ctx: LayerContext) -> str | None:
        try:
            with _session(ctx) as session:
                found = session.status()
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
