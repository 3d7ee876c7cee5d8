"""The kubernetes layer's local work: binaries on the nodes, the API ready, the addons
applied, every server a Node.

``kubernetes.binaries`` (one per server) sends the node the binaries of the
inventory's version it lacks, from this machine's build (``kube/delivery.py``);
``kubernetes.ready`` waits for ``/readyz`` through the API endpoint with the admin
certificate; ``kubernetes.addons`` server-side applies what the cluster needs
(``render/kubernetes/addons.py``), changing nothing on a cluster that has it all;
``kubernetes.nodes`` waits until every server has registered as a Node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labctl.errors import LabctlError
from labctl.kube import delivery
from labctl.kube.session import KubeSession
from labctl.render.kubernetes import common
from labctl.render.kubernetes.addons import Doc, all_addons

if TYPE_CHECKING:
    from labctl.drivers.ssh import SshSession
    from labctl.engine.layer import LayerContext


class BinariesWork:
    """The binaries ``server`` runs, at the inventory's version, in its binary_dir."""

    def __init__(self, server: str) -> None:
        self.server = server

    def _wanted(self, ctx: LayerContext) -> tuple[str, list[str], str]:
        """The folder on the node, the binaries it must hold there, and their version."""
        inventory = ctx.inventory
        runtime = common.runtime(inventory, ctx.standins.kube_runtime)
        names = common.node_binaries(inventory, inventory.server(self.server), runtime)
        folder = ctx.on_node(self.server, common.bin_dir(inventory, ctx.standins.kube_bin_dir))
        return folder, names, common.version(inventory)

    def _ssh(self, ctx: LayerContext) -> SshSession:
        from labctl.drivers.ssh import SshSession
        from labctl.engine.targets import ssh_target

        return SshSession(ssh_target(ctx.inventory, ctx.base_dir, self.server))

    def apply(self, ctx: LayerContext) -> bool:
        from labctl.kube.binaries import bin_dir

        folder, names, want = self._wanted(ctx)
        with self._ssh(ctx) as ssh:
            stale = delivery.node_stale(ssh, folder, names, want)
            if stale:
                delivery.deliver(ssh, folder, stale, bin_dir(want), want)
        return bool(stale)

    def observe(self, ctx: LayerContext) -> str | None:
        folder, names, want = self._wanted(ctx)
        try:
            with self._ssh(ctx) as ssh:
                stale = delivery.node_stale(ssh, folder, names, want)
        except LabctlError as exc:  # a dry run before the node is up says so, not fails
            return f"{self.server} cannot be asked yet ({exc}); its binaries would be sent"
        return "; ".join(s.describe(want) for s in stale) or None


def _addons(ctx: LayerContext) -> list[Doc]:
    """The addons for the runtime in effect (the simulated lab's kube-proxy differs)."""
    return all_addons(ctx.inventory, common.runtime(ctx.inventory, ctx.standins.kube_runtime))


def _session(ctx: LayerContext) -> KubeSession:
    return KubeSession(ctx.inventory, ctx.base_dir)


class ReadyWork:
    def apply(self, ctx: LayerContext) -> bool:
        _session(ctx).wait_ready(ctx.inventory.cluster.kubernetes.ready_timeout)
        return False  # a wait: it changes nothing

    def observe(self, ctx: LayerContext) -> str | None:
        ready, why = _session(ctx).readyz()
        return None if ready else f"not ready yet: {why}"


class AddonsWork:
    def apply(self, ctx: LayerContext) -> bool:
        return bool(_session(ctx).apply(_addons(ctx)))

    def observe(self, ctx: LayerContext) -> str | None:
        try:
            differing = _session(ctx).differing(_addons(ctx))
        except LabctlError as exc:
            return f"the API cannot be asked yet ({exc}); every addon would be applied"
        return "; ".join(differing) or None


class NodesWork:
    def apply(self, ctx: LayerContext) -> bool:
        _session(ctx).wait_nodes(ctx.inventory.cluster.kubernetes.ready_timeout)
        return False

    def observe(self, ctx: LayerContext) -> str | None:
        try:
            missing = _session(ctx).missing_nodes()
        except LabctlError as exc:
            return f"the API cannot be asked yet ({exc})"
        return f"not registered yet: {', '.join(missing)}" if missing else None
