"""The power layer: every server in the inventory powered on, through its BMC.

Powering on never takes a quorum down, so the guard has nothing to say here;
servers already on are left alone (the BMC applier reads before it acts), so
a converged lab costs each BMC one status read and nothing else. This layer
does not wait for an OS to answer: before the os layer there may be none, and
the layers that log in wait for their nodes themselves.
"""

from __future__ import annotations

from collections.abc import Iterator

from labctl.engine.actions import SetPower
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan


class PowerLayer:
    name = "power"
    needs: tuple[str, ...] = ()  # the BMCs answer whatever else is up

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        yield Plan.of("power", [SetPower(s.name, "on") for s in ctx.inventory.servers])
