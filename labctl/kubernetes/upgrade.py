"""A change of Kubernetes version, rolled through the running cluster node by node.

Without this, a new ``cluster.kubernetes.version`` changed every node's unit
files at once, so every kubelet was restarted at the same moment with its pods
still scheduled on it, and only the control-plane restarts waited for each other.
Now, when a registered Node's kubelet reports another version than the inventory's
(or a node is still cordoned by an upgrade that was interrupted), the kubernetes
layer's ``nodes`` plan is built by ``rolling_upgrade``: control-plane nodes one at
a time, then the other nodes in batches of ``cluster.kubernetes.upgrade.
kubelet_batch``. Before a node's first step, ``kubernetes.drain`` cordons it and
evicts its pods through the API (``kubernetes/drain.py``, PodDisruptionBudgets
respected, bounded by ``drain_timeout``); after its last step (for a control-plane
node, its API server ready again), ``kubernetes.uncordon`` waits until the Node is
Ready at the new version and makes it schedulable again. The next batch starts
only then.

Resuming needs no record of its own. A cordon labctl made carries the annotation
``ANNOTATION``; the drain of a node already at the new version and not so
annotated does nothing, and a node still annotated keeps the plan in upgrade
order until its uncordon has run. A node the operator had cordoned before stays
cordoned afterwards. Servers that are not Nodes yet (a first bootstrap, a server
added) are not waited for: they come up in parallel as before.

``batches`` and ``rolling_upgrade`` are pure; ``RunningNodes.gather`` asks the API
(only when the journal says the kubernetes layer ran here), and the two works
below are the layer's local steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from labctl.engine.actions import Action, LocalStep
from labctl.engine.plan import Plan, Step
from labctl.errors import DriverTimeout, LabctlError
from labctl.inventory.model import Inventory
from labctl.render.kubernetes import common

if TYPE_CHECKING:
    from labctl.engine.layer import LayerContext

# On a Node labctl cordoned for an upgrade: "cordoned" (uncordon it afterwards) or
# "already" (the operator had cordoned it: leave it so), then "/ready" or "/not-ready":
# whether it was Ready when drained (a Node waits to be Ready again only if it was; a
# lab without its pod network yet has none Ready).
ANNOTATION = "labctl.io/upgrade-cordon"
DRAIN = "kubernetes.drain"
UNCORDON = "kubernetes.uncordon"


@dataclass(frozen=True)
class NodeVersion:
    name: str
    kubelet: str  # as the Node reports it, e.g. v1.35.4
    upgrading: bool  # cordoned by an upgrade that has not uncordoned it yet


@dataclass(frozen=True)
class RunningNodes:
    """A fact: each registered Node's kubelet version, as the API reports it (empty when
    the kubernetes layer never ran here, or the API did not answer: ``unread`` says why)."""

    nodes: tuple[NodeVersion, ...] = ()
    unread: str = ""

    @classmethod
    def from_api(cls, items: Sequence[Mapping[str, Any]]) -> RunningNodes:
        found = []
        for item in items:
            meta = item.get("metadata", {})
            info = item.get("status", {}).get("nodeInfo", {})
            found.append(
                NodeVersion(
                    str(meta.get("name", "")),
                    str(info.get("kubeletVersion", "")),
                    ANNOTATION in (meta.get("annotations") or {}),
                )
            )
        return cls(tuple(found))

    @classmethod
    def gather(cls, ctx: LayerContext) -> Self:
        from labctl.engine.journal import Journal, journal_path
        from labctl.kubernetes.api import KubeSession

        if not journal_path(ctx.state_dir).exists():
            return cls()
        if "kubernetes" not in Journal(ctx.state_dir).layers():
            return cls()
        try:
            items = (
                KubeSession(ctx.inventory, ctx.base_dir, timeout=3.0).client().list("/api/v1/nodes")
            )
        except LabctlError as exc:
            return cls(unread=f"the API did not answer ({exc})")
        return cls(cls.from_api(items).nodes)

    def versions(self) -> dict[str, str]:
        return {n.name: n.kubelet for n in self.nodes}

    def describe(self) -> str:
        if not self.nodes:
            return "no Node registered yet"
        return ", ".join(f"{n.name} at {n.kubelet}" for n in self.nodes)


def needs_upgrade(inventory: Inventory, running: RunningNodes) -> bool:
    """Whether a registered Node runs another kubelet version than the inventory's, or is
    still cordoned by an upgrade."""
    want = common.version(inventory)
    return any(n.kubelet != want or n.upgrading for n in running.nodes)


def batches(inventory: Inventory, kubelets: Mapping[str, str]) -> list[tuple[str, ...]]:
    """The upgrade's order: each control-plane node alone, then the other nodes in
    batches of ``kubelet_batch``, inventory order; only servers that are Nodes
    (``kubelets``: Node name -> kubelet version). Empty when none runs another version."""
    want = common.version(inventory)
    if not any(v and v != want for v in kubelets.values()):
        return []
    return _order(inventory, kubelets)


def _order(inventory: Inventory, registered: Mapping[str, object]) -> list[tuple[str, ...]]:
    planes = [s.name for s in common.control_plane(inventory) if s.name in registered]
    others = [s.name for s in common.nodes(inventory) if s.name in registered]
    others = [n for n in others if n not in planes]
    size = inventory.cluster.kubernetes.upgrade.kubelet_batch
    return [(n,) for n in planes] + [
        tuple(others[i : i + size]) for i in range(0, len(others), size)
    ]


def order(inventory: Inventory, running: RunningNodes) -> list[tuple[str, ...]]:
    """``batches`` for the layer: also when only an interrupted upgrade's cordon is left."""
    if not needs_upgrade(inventory, running):
        return []
    return _order(inventory, running.versions())


def drain_step(inventory: Inventory, node: str) -> LocalStep:
    want = common.version(inventory)
    return LocalStep(
        DRAIN,
        f"cordon {node} and evict its pods, unless its kubelet is at {want} already",
        f"{want}\0{node}",
        subject=node,
    )


def uncordon_step(inventory: Inventory, node: str) -> LocalStep:
    want = common.version(inventory)
    return LocalStep(
        UNCORDON,
        f"wait until {node} is Ready at {want}, then uncordon it",
        f"{want}\0{node}",
        subject=node,
    )


def rolling_upgrade(
    layer: str,
    inventory: Inventory,
    node_actions: Mapping[str, Sequence[Action]],
    order: Sequence[Sequence[str]],
    is_restart: Callable[[Action], bool],
) -> Plan:
    """The nodes plan of an upgrade: ``node_actions`` (each server's steps, as the
    layer makes them) with each node of ``order`` drained before its first step and
    uncordoned after its last, batch after batch.

    The local steps come first in the plan, so the executor gives their target a
    worker first (a node waits for its drain; the drains wait for nothing but the
    batch before). Restarts that disrupt the control plane stay one at a time
    across nodes, as ``Plan.rolling`` makes them.
    """
    local: list[Step] = []
    drains: dict[str, str] = {}
    for batch in order:
        for node in batch:
            step = Step(drain_step(inventory, node).key, drain_step(inventory, node))
            drains[node] = step.id
            local.append(step)
        for node in batch:
            last = node_actions[node][-1].key
            local.append(Step(uncordon_step(inventory, node).key, uncordon_step(inventory, node),
                              (last,)))  # fmt: skip
    ranked = {node: i for i, node in enumerate(n for batch in order for n in batch)}
    names = sorted(node_actions, key=lambda n: ranked.get(n, len(ranked)))
    steps: list[Step] = []
    previous: tuple[str, ...] = ()
    for name in names:
        for i, action in enumerate(node_actions[name]):
            after: tuple[str, ...] = ()
            if is_restart(action):
                after, previous = previous, (action.key,)
            if i == 0 and name in drains:
                after = (*after, drains[name])
            steps.append(Step(action.key, action, after))
    return Plan(layer, (*local, *steps))


# The works --------------------------------------------------------------------------


def _node(client: Any, name: str) -> dict[str, Any] | None:
    import urllib.parse

    found: dict[str, Any] | None = client.get(f"/api/v1/nodes/{urllib.parse.quote(name)}")
    return found


def _state(node: Mapping[str, Any]) -> tuple[str, str | None, bool, bool]:
    """(kubelet version, labctl's cordon annotation, unschedulable, Ready)."""
    meta = node.get("metadata", {})
    status = node.get("status", {})
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", [])
    )
    return (
        str(status.get("nodeInfo", {}).get("kubeletVersion", "")),
        (meta.get("annotations") or {}).get(ANNOTATION),
        bool(node.get("spec", {}).get("unschedulable")),
        ready,
    )


def _was_ready(mark: str | None) -> bool:
    """Whether an upgrade drained the Node while it was Ready (then it waits to be again)."""
    return mark is not None and not mark.endswith("/not-ready")


class _NodeWork:
    def __init__(self, node: str) -> None:
        self.node = node

    def _client(self, ctx: LayerContext) -> Any:
        """The API's client (a ``KubeClient``) with the admin certificate."""
        from labctl.kubernetes.api import KubeSession

        return KubeSession(ctx.inventory, ctx.base_dir).client()


class DrainWork(_NodeWork):
    """Cordon and drain one Node before its kubelet is replaced (``kubernetes.drain``)."""

    def _why(self, ctx: LayerContext, client: Any) -> str | None:
        found = _node(client, self.node)
        if found is None:
            return None  # not a Node: nothing runs on it to move
        kubelet, mark, _, _ = _state(found)
        want = common.version(ctx.inventory)
        if kubelet == want and mark is None:
            return None
        if mark is not None:
            return f"{self.node} is still cordoned by an upgrade to {want}"
        return f"its kubelet runs {kubelet}, not {want}: cordon and drain it first"

    def apply(self, ctx: LayerContext) -> bool:
        from labctl.kubernetes.drain import drain

        client = self._client(ctx)
        if self._why(ctx, client) is None:
            return False
        found = _node(client, self.node) or {}
        _, mark, cordoned, ready = _state(found)
        if mark is None:
            mark = ("already" if cordoned else "cordoned") + ("/ready" if ready else "/not-ready")
        try:
            drain(client, self.node, ctx.inventory.cluster.kubernetes.upgrade.drain_timeout,
                  annotations={ANNOTATION: mark})  # fmt: skip
        except DriverTimeout as exc:  # a bounded wait ran out: said once, not retried
            raise LabctlError(f"{exc} (cluster.kubernetes.upgrade.drain_timeout)") from None
        return True

    def observe(self, ctx: LayerContext) -> str | None:
        try:
            return self._why(ctx, self._client(ctx))
        except LabctlError as exc:
            return f"the API cannot be asked ({exc}); {self.node} would be drained"


class UncordonWork(_NodeWork):
    """Wait until one Node reports the inventory's version (and is Ready, if it was when
    drained), then uncordon it, if an upgrade cordoned it (``kubernetes.uncordon``)."""

    def apply(self, ctx: LayerContext) -> bool:
        import time

        from labctl.kubernetes.drain import cordon

        client = self._client(ctx)
        want = common.version(ctx.inventory)
        timeout = ctx.inventory.cluster.kubernetes.ready_timeout
        end = time.monotonic() + timeout
        while True:
            found = _node(client, self.node)
            if found is not None:
                kubelet, mark, _, ready = _state(found)
                if kubelet == want and (ready or not _was_ready(mark)):
                    break
                why = f"kubelet {kubelet or 'not reporting'}, {'Ready' if ready else 'not Ready'}"
            else:
                why = "not a Node"
            if time.monotonic() > end:
                raise LabctlError(
                    f"{self.node} is not Ready at {want} after {timeout:g} s ({why}); it stays "
                    "cordoned (cluster.kubernetes.ready_timeout)"
                )
            time.sleep(1.0)
        if mark is None:
            return False
        cordon(client, self.node, unschedulable=mark.startswith("already"),
               annotations={ANNOTATION: None})  # fmt: skip
        return True

    def observe(self, ctx: LayerContext) -> str | None:
        want = common.version(ctx.inventory)
        try:
            found = _node(self._client(ctx), self.node)
        except LabctlError as exc:
            return f"the API cannot be asked ({exc}); {self.node} would be uncordoned"
        if found is None:
            return None
        kubelet, mark, _, _ = _state(found)
        if kubelet == want and mark is None:
            return None
        return f"once Ready at {want} (now {kubelet}), {self.node} would be uncordoned"
