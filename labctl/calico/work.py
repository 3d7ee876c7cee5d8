"""The calico layer's local work: wait for the fabric to be up (``calico.established``).

Every session Established from both ends and every node's pod block in every
peering switch's routing table, within the hold time plus 30 s (a node that
just started BIRD connects within seconds; one that cannot is named).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labctl.calico.session import BgpSession
from labctl.errors import LabctlError

if TYPE_CHECKING:
    from labctl.engine.layer import LayerContext


def _session(ctx: LayerContext) -> BgpSession:
    return BgpSession(ctx.inventory, ctx.base_dir, ctx.calico_bird, ctx.switch_platform)


class EstablishedWork:
    def apply(self, ctx: LayerContext) -> bool:
        with _session(ctx) as session:
            session.wait_established(ctx.inventory.cluster.calico.hold_time + 30.0)
        return False  # it changes nothing; it proves

    def observe(self, ctx: LayerContext) -> str | None:
        try:
            with _session(ctx) as session:
                problems = session.status().problems
        except (LabctlError, OSError) as exc:  # a dry run reports; a dead peer is news
            return f"cannot read the fabric yet: {exc}"
        return f"not up yet: {problems[0]}" if problems else None
