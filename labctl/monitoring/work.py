"""The monitoring layer's local steps: the RBAC through the API, the wait for every target.

``monitoring.rbac`` applies the ClusterRole that lets the ``prometheus`` identity read
metrics and nothing else, with its binding (``render/monitoring/prometheus.py``), by
server-side apply as the admin. ``monitoring.targets`` waits, bounded, until
Prometheus reports every target the inventory implies up (``status.py``): the
layer's one wait for a scrape.
"""

from __future__ import annotations

from labctl.engine.layer import LayerContext
from labctl.errors import LabctlError
from labctl.kubernetes.api import KubeSession
from labctl.monitoring import status
from labctl.render.monitoring import rbac


class RbacWork:
    """``monitoring.rbac``: the metrics-only ClusterRole and its binding."""

    def apply(self, ctx: LayerContext) -> bool:
        return bool(KubeSession(ctx.inventory, ctx.base_dir).apply(rbac()))

    def observe(self, ctx: LayerContext) -> str | None:
        try:
            found = KubeSession(ctx.inventory, ctx.base_dir).differing(rbac())
        except LabctlError as exc:
            return f"the API cannot be asked yet ({exc}); the RBAC would be applied"
        return "; ".join(found) or None


class TargetsWork:
    """``monitoring.targets``: every target the inventory implies is up."""

    def apply(self, ctx: LayerContext) -> bool:
        status.wait_all_up(ctx.inventory, status.wait_seconds(ctx.inventory))
        return False  # a wait: it changes nothing

    def observe(self, ctx: LayerContext) -> str | None:
        try:
            found = status.ask(ctx.inventory)
        except LabctlError as exc:
            return f"Prometheus cannot be asked yet ({exc})"
        down = [f"{t.job}/{t.instance}" for t in found.not_up]
        return f"not up yet: {', '.join(down)}" if down else None
