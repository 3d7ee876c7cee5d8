"""The kubernetes layer's local work: the API ready, the addons applied, every server a Node.

``kubernetes.ready`` waits for ``/readyz`` through the API endpoint with the admin
certificate; ``kubernetes.addons`` server-side applies what the cluster needs
(``render/kubernetes/addons.py``), changing nothing on a cluster that has it all;
``kubernetes.nodes`` waits until every server has registered as a Node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labctl.errors import LabctlError
from labctl.kube.session import KubeSession
from labctl.render.kubernetes.addons import all_addons

if TYPE_CHECKING:
    from labctl.engine.layer import LayerContext


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
        return bool(_session(ctx).apply(all_addons(ctx.inventory)))

    def observe(self, ctx: LayerContext) -> str | None:
        try:
            differing = _session(ctx).differing(all_addons(ctx.inventory))
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
