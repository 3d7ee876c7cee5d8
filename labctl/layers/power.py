"""``bootstrap``'s power step: every server in the inventory powered on, through its BMC.

Powering on never takes a quorum down, so the guard has nothing to say here;
servers already on are left alone (read, not touched), so a converged lab
sends each BMC one status read and nothing else. The layer also applies
``SetBootDevice``, which later layers' plans use (a PXE install boots from pxe once).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from labctl.engine.actions import Action, SetBootDevice, SetPower
from labctl.engine.plan import Plan
from labctl.errors import LabctlError

if TYPE_CHECKING:
    from labctl.engine.executor import Connector, Handler, Observer
    from labctl.inventory.model import Server
    from labctl.layers import LayerContext
    from labctl.layers.power_backends import IpmiBackend

TIMEOUT = 5.0  # seconds per BMC call, as `labctl power`
SETTLE = 60.0  # seconds a server may take to report on after being told


class PowerLayer:
    name = "power"

    def __init__(self) -> None:
        self._backends: dict[str, IpmiBackend] = {}
        self._lock = threading.Lock()

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        yield Plan.of("power", [SetPower(s.name, "on") for s in ctx.inventory.servers])

    def _ipmi(self, ctx: LayerContext, server: Server) -> IpmiBackend:
        # One per server, built on first use: a server whose BMC password is missing
        # fails its own step, with its own variable's name, and no other.
        from labctl.layers.power_backends import IpmiBackend

        with self._lock:
            if server.name not in self._backends:
                self._backends[server.name] = IpmiBackend([server], ctx.base_dir, TIMEOUT)
            return self._backends[server.name]

    def handlers(self, ctx: LayerContext) -> dict[str, Handler]:
        from labctl.layers.power import power_on

        servers = {s.name: s for s in ctx.inventory.servers}
        bound = TIMEOUT * 3 + 1

        def set_power(action: Action, connector: Connector) -> bool:
            assert isinstance(action, SetPower)
            if action.state != "on":  # off and cycle go through `labctl power` and its guard
                raise LabctlError(f"{action.host}: the power step powers servers on only")
            server = servers[action.host]
            return asyncio.run(
                power_on(server, self._ipmi(ctx, server), bound=bound, settle=SETTLE)
            )

        def set_boot_device(action: Action, connector: Connector) -> bool:
            from labctl.drivers.ipmi import BootDevice

            assert isinstance(action, SetBootDevice)
            server, device = servers[action.host], BootDevice(action.device)
            # Always sent: a next-boot setting is used up by the boot it chose, so
            # reading the BMC cannot say whether this one is still to come.
            asyncio.run(self._ipmi(ctx, server).set_boot_device(server, device, action.persistent))
            return True

        return {SetPower.kind: set_power, SetBootDevice.kind: set_boot_device}

    def observers(self, ctx: LayerContext) -> dict[str, Observer]:
        from labctl.layers.power import read_state

        servers = {s.name: s for s in ctx.inventory.servers}

        def power_state(action: Action) -> str | None:
            assert isinstance(action, SetPower)
            server = servers[action.host]
            state = asyncio.run(read_state(server, self._ipmi(ctx, server), TIMEOUT * 3 + 1))
            return None if state == action.state else f"power is {state}"

        def boot_device(action: Action) -> str | None:
            assert isinstance(action, SetBootDevice)
            server = servers[action.host]
            current = asyncio.run(self._ipmi(ctx, server).boot_device(server))
            return None if current == action.device else f"boots from {current}"

        return {SetPower.kind: power_state, SetBootDevice.kind: boot_device}

    def close(self) -> None:
        with self._lock:
            for backend in self._backends.values():
                backend.close()
            self._backends.clear()
