"""The ceph layer's local work: minting the cephx keys, and waiting for HEALTH_OK.

``ceph.keys`` mints a key for every entity the inventory's cluster has and
does not have one yet (``keys.py``); a key once minted is never replaced, so
a re-run changes nothing. ``ceph.healthy`` waits until the cluster says
HEALTH_OK and otherwise fails naming each health check that is not OK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labctl.ceph.cluster import CephSession
from labctl.ceph.keys import KeyStore
from labctl.errors import LabctlError
from labctl.render import ceph as render

if TYPE_CHECKING:
    from labctl.engine.layer import LayerContext


class KeysWork:
    def apply(self, ctx: LayerContext) -> bool:
        store = KeyStore.of(ctx.inventory, ctx.base_dir)
        return bool(store.ensure(render.entities(ctx.inventory)))

    def observe(self, ctx: LayerContext) -> str | None:
        store = KeyStore.of(ctx.inventory, ctx.base_dir)
        minted = store.load()  # decrypted once, not once per entity
        missing = [e for e in render.entities(ctx.inventory) if e not in minted]
        return f"no key yet for {', '.join(missing)}" if missing else None


class HealthyWork:
    def apply(self, ctx: LayerContext) -> bool:
        timeout = render.settings(ctx.inventory).health_timeout
        with CephSession(ctx.inventory, ctx.base_dir) as session:
            session.wait_healthy(timeout)
        return False  # a check: it changes nothing

    def observe(self, ctx: LayerContext) -> str | None:
        with CephSession(ctx.inventory, ctx.base_dir) as session:
            try:
                health = session.health()
            except LabctlError as exc:
                return str(exc)
        if health.status != "HEALTH_OK":
            return f"{health.status}: " + "; ".join(c.sentence() for c in health.checks)
        return None
