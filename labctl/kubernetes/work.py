"""The kubernetes layer's local work: binaries on the nodes, the API ready, the addons
applied, every server a Node.

``kubernetes.binaries`` sends every node, all at once, the binaries of the
inventory's version it lacks, from this machine's build (``kubernetes/delivery.py``);
``kubernetes.ready`` waits for ``/readyz`` through the API endpoint with the admin
certificate; ``kubernetes.addons`` server-side applies what the cluster needs
(``render/kubernetes/addons.py``), changing nothing on a cluster that has it all;
``kubernetes.nodes`` waits until every server has registered as a Node.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from labctl.errors import LabctlError
from labctl.kubernetes import delivery
from labctl.kubernetes.api import KubeSession
from labctl.render.kubernetes import common
from labctl.render.kubernetes.addons import Doc, all_addons

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from labctl.drivers.ssh import SshSession
    from labctl.engine.layer import LayerContext

T = TypeVar("T")


def _in_parallel(ctx: LayerContext, each: Callable[[str], T]) -> dict[str, T | LabctlError]:
    """``each(server)`` for every server at once (one SSH connection each): a converged
    run pays one round trip, not one per server in turn."""
    servers = [s.name for s in common.nodes(ctx.inventory)]

    def guarded(name: str) -> T | LabctlError:
        try:
            return each(name)
        except LabctlError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, len(servers))) as pool:
        return dict(zip(servers, pool.map(guarded, servers), strict=True))


class BinariesWork:
    """Every server's binaries at the inventory's version in its binary_dir."""

    def _wanted(self, ctx: LayerContext, server: str) -> tuple[str, list[str], str]:
        """The folder on the node, the binaries it must hold there, and their version."""
        inventory = ctx.inventory
        runtime = common.runtime(inventory, ctx.platform.kube_runtime(inventory))
        names = common.binaries_by_node(inventory, runtime)[server]
        folder = ctx.on_node(
            server, common.bin_dir(inventory, ctx.platform.kube_bin_dir(inventory))
        )
        return folder, names, common.version(inventory)

    def _ssh(self, ctx: LayerContext, server: str) -> AbstractContextManager[SshSession]:
        from labctl.drivers.ssh import session
        from labctl.targets import ssh_target

        return session(ssh_target(ctx.inventory, ctx.base_dir, server))

    def _stale(self, ctx: LayerContext, server: str) -> list[delivery.Stale]:
        folder, names, want = self._wanted(ctx, server)
        with self._ssh(ctx, server) as ssh:
            return delivery.node_stale(ssh, folder, names, want)

    def _ensure(self, ctx: LayerContext, server: str) -> bool:
        from labctl.kubernetes.binaries import bin_dir

        folder, names, want = self._wanted(ctx, server)
        with self._ssh(ctx, server) as ssh:
            stale = delivery.node_stale(ssh, folder, names, want)
            if stale:
                delivery.deliver(ssh, folder, stale, bin_dir(want), want)
        return bool(stale)

    def apply(self, ctx: LayerContext) -> bool:
        done = _in_parallel(ctx, lambda server: self._ensure(ctx, server))
        failed = [f"{name}: {r}" for name, r in done.items() if isinstance(r, LabctlError)]
        if failed:
            raise LabctlError("; ".join(failed))
        return any(r is True for r in done.values())

    def observe(self, ctx: LayerContext) -> str | None:
        want = common.version(ctx.inventory)
        said = []
        for name, found in _in_parallel(ctx, lambda server: self._stale(ctx, server)).items():
            if isinstance(found, LabctlError):  # a dry run before the node is up says so
                said.append(f"{name} cannot be asked yet ({found}); its binaries would be sent")
            elif found:
                said.append(f"{name}: " + ", ".join(s.describe(want) for s in found))
        return "; ".join(said) or None


def _addons(ctx: LayerContext) -> list[Doc]:
    """The addons as the platform runs them (kube-proxy differs where nodes share a kernel)."""
    inventory = ctx.inventory
    node = ctx.platform.node_runtime(
        inventory, common.runtime(inventory, ctx.platform.kube_runtime(inventory))
    )
    return all_addons(inventory, node.kube_proxy_settings)


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
