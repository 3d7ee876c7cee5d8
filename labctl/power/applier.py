"""The BMC applier: power and boot device of servers, for any layer's plans.

It carries out ``SetPower`` and ``SetBootDevice`` through a ``PowerSession``, so
every power change a bootstrap makes goes through the same channels and the
same quorum guard as ``labctl power``. It lives with power, not in the engine:
the engine knows the ``Applier`` protocol and imports no domain package, and
``labctl/run.py`` adds this applier to a run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from labctl.engine.actions import Action, SetBootDevice, SetPower
from labctl.engine.layer import LayerContext
from labctl.errors import LabctlError

if TYPE_CHECKING:
    from labctl.inventory.model import Server
    from labctl.power.controller import PowerSession


class BmcApplier:
    """Power and boot device through servers' BMCs (IPMI), for any layer's plans.

    Each server's BMC password is resolved when that server is first reached,
    so a missing one fails that server's step alone. Powering on is done at
    once; ``off`` and ``cycle`` take a server down, so they run one at a time,
    each after the quorum guard has read every etcd and Ceph monitor member.
    """

    kinds = (SetPower.kind, SetBootDevice.kind)

    def __init__(self, ctx: LayerContext) -> None:
        self._ctx = ctx
        self._servers = {s.name: s for s in ctx.inventory.servers}
        self._session: PowerSession | None = None
        self._lock = threading.Lock()
        self._disruptive = threading.Lock()

    def _power(self) -> PowerSession:
        from labctl.power.controller import PowerSession

        with self._lock:
            if self._session is None:
                from labctl.calico.graceful import Fabric
                from labctl.engine.journal import applied_layers

                # Before a layer takes a node down, the switches stop preferring it (once
                # the calico layer has run, they hold the node's sessions).
                fabric = None
                if "calico" in applied_layers(self._ctx.state_dir):
                    platform = self._ctx.platform.switch_platform()
                    fabric = Fabric(self._ctx.inventory, self._ctx.base_dir, platform)
                self._session = PowerSession(
                    self._ctx.inventory, self._ctx.base_dir, graceful=fabric
                )
            return self._session

    def _server(self, name: str) -> Server:
        server = self._servers.get(name)
        if server is None:
            raise LabctlError(f"no server named {name} in the inventory")
        return server

    def apply(self, action: Action) -> bool:
        if isinstance(action, SetBootDevice):
            from labctl.drivers.ipmi import BootDevice

            device = BootDevice(action.device)
            server = self._server(action.host)
            # Always sent: a next-boot setting is used up by the boot it chose, so
            # reading the BMC cannot say whether this one is still to come.
            asyncio.run(self._power().set_boot_device(server, device, action.persistent))
            return True
        assert isinstance(action, SetPower)
        server = self._server(action.host)
        if action.state == "on":
            return asyncio.run(self._power().ensure_on(server))
        if action.state not in ("off", "cycle"):
            raise LabctlError(f"{action.host}: no power state {action.state!r} (on, off, cycle)")
        return self._take_down(server, action.state)

    def _take_down(self, server: Server, state: str) -> bool:
        from labctl.power.requests import PowerVerb

        with self._disruptive:
            (result,) = asyncio.run(self._power().request([server], PowerVerb(state)))
        if result.error:
            raise LabctlError(f"{server.name}: power {state}: {result.error}")
        return state == "cycle" or result.before != result.after

    def observe(self, action: Action) -> str | None:
        server = self._server(action.host)
        if isinstance(action, SetBootDevice):
            current = asyncio.run(self._power().boot_device(server))
            return None if current == action.device else f"boots from {current}"
        assert isinstance(action, SetPower)
        state = asyncio.run(self._power().state(server))
        if action.state == "cycle":
            return f"power is {state}; a cycle always acts"
        return None if state == action.state else f"power is {state}"

    def survey(self, actions: Sequence[Action]) -> Mapping[str, str | None]:
        return {}  # one status read per server is already one round trip

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                asyncio.run(self._session.close())
                self._session = None
