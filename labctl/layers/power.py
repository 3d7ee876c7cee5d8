"""Power: choose targets, guard quorum, and drive BMCs or PDUs in parallel.

The orchestration talks to a narrow ``PowerBackend`` (one per way of reaching a
server: its BMC, or the PDU outlets feeding it), so the order of operations,
the guard, the bounds and the result table are tested without hardware; the
backends built on the IPMI and SNMP drivers are tested against real peers.
"""

from __future__ import annotations

import asyncio
import difflib
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

from labctl.errors import DriverTimeout, LabctlError, UsageError
from labctl.inventory.model import Inventory, Server
from labctl.layers.quorum import quorum_refusals

T = TypeVar("T")


class Action(StrEnum):
    STATUS = "status"
    ON = "on"
    OFF = "off"
    CYCLE = "cycle"
    RESET = "reset"
    SOFT = "soft"


# The state each action leaves a server in (None: no change asked).
TARGET_STATE: dict[Action, str | None] = {
    Action.STATUS: None,
    Action.ON: "on",
    Action.OFF: "off",
    Action.CYCLE: "on",
    Action.RESET: "on",
    Action.SOFT: "off",
}
# Actions that take a server down, if only for a moment: the quorum guard applies.
DISRUPTIVE = {Action.OFF, Action.CYCLE, Action.RESET, Action.SOFT}


class PowerBackend(Protocol):
    """One way to reach servers' power: their BMCs, or the PDU outlets feeding them."""

    name: str

    async def state(self, server: Server) -> str:
        """``on`` or ``off``; raise a LabctlError when it cannot be read."""
        ...

    async def act(self, server: Server, action: Action) -> None: ...


@dataclass(frozen=True)
class TargetResult:
    server: str
    action: str
    before: str | None
    after: str | None
    seconds: float
    error: str | None = None
    error_detail: str | None = None  # the raw fault under ``error`` (an errno's text), if any

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__, ok=self.ok)


def select_targets(
    inventory: Inventory, names: Sequence[str], everything: bool, role: str | None
) -> list[Server]:
    """The servers a command names, in inventory order; unknown names are usage errors."""
    known = {s.name: s for s in inventory.servers}
    for name in names:
        if name not in known:
            near = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {near[0]}?" if near else f"; servers: {', '.join(known)}"
            raise UsageError(f"no server named '{name}'{hint}")
    if not (names or everything or role):
        raise UsageError("name the servers, or use --all or --role ROLE")
    chosen = {n for n in names}
    if everything:
        chosen |= set(known)
    if role:
        members = {s.name for s in inventory.with_role(role)}
        if not members:
            raise UsageError(f"no server has the role '{role}'")
        chosen |= members
    return [s for s in inventory.servers if s.name in chosen]


async def _bounded(seconds: float, what: str, call: Awaitable[T]) -> T:
    try:
        return await asyncio.wait_for(call, seconds)
    except TimeoutError:
        raise LabctlError(f"{what}: no answer within {seconds:g} s") from None


async def guard_quorum(
    inventory: Inventory,
    backend: PowerBackend,
    going_down: Sequence[Server],
    bound: float,
) -> list[str]:
    """Refusals from the quorum guard, after reading every etcd/ceph-mon member's state."""
    members = {s.name: s for s in inventory.servers if s.roles & {"etcd", "ceph-mon"}}
    if not members or not {s.name for s in going_down} & set(members):
        return []

    async def read(server: Server) -> tuple[str, bool | None]:
        try:
            state = await _bounded(bound, server.name, backend.state(server))
        except LabctlError:
            return server.name, None  # unknown counts as down
        return server.name, state == "on"

    states = dict(await asyncio.gather(*(read(s) for s in members.values())))
    return quorum_refusals(inventory, states, [s.name for s in going_down])


async def run_power(
    servers: Sequence[Server],
    action: Action,
    backend: PowerBackend,
    *,
    bound: float = 30.0,
    settle: float = 60.0,
    concurrency: int = 64,
    poll: float = 0.5,
) -> list[TargetResult]:
    """Apply ``action`` to every server in parallel and wait until each reaches its state.

    ``bound`` limits each single call to a device; ``settle`` limits how long a
    server may take to reach the asked state afterwards.
    """
    gate = asyncio.Semaphore(concurrency)
    wanted = TARGET_STATE[action]

    async def one(server: Server) -> TargetResult:
        start = time.monotonic()
        before: str | None = None
        async with gate:
            try:
                before = await _bounded(bound, server.name, backend.state(server))
                if action is Action.STATUS:
                    return TargetResult(
                        server.name, str(action), before, before, time.monotonic() - start
                    )
                if not (action in (Action.ON, Action.OFF, Action.SOFT) and before == wanted):
                    await _bounded(bound, server.name, backend.act(server, action))
                after = await _wait_for(server, backend, wanted, bound, settle, poll)
            except LabctlError as exc:
                return TargetResult(
                    server.name,
                    str(action),
                    before,
                    None,
                    time.monotonic() - start,
                    str(exc),
                    exc.detail,
                )
        error = None if after == wanted else f"still {after} after {settle:g} s (asked {wanted})"
        return TargetResult(
            server.name, str(action), before, after, time.monotonic() - start, error
        )

    return list(await asyncio.gather(*(one(s) for s in servers)))


async def read_state(server: Server, backend: PowerBackend, bound: float) -> str:
    return await _bounded(bound, server.name, backend.state(server))


async def power_on(
    server: Server, backend: PowerBackend, *, bound: float, settle: float, poll: float = 0.5
) -> bool:
    """Make sure ``server`` is on; True when it was off. Errors raise, with their own type."""
    if await read_state(server, backend, bound) == "on":
        return False
    await _bounded(bound, server.name, backend.act(server, Action.ON))
    after = await _wait_for(server, backend, "on", bound, settle, poll)
    if after != "on":
        raise DriverTimeout(f"{server.name}: still {after} after {settle:g} s (asked on)")
    return True


async def _wait_for(
    server: Server,
    backend: PowerBackend,
    wanted: str | None,
    bound: float,
    settle: float,
    poll: float,
) -> str:
    deadline = time.monotonic() + settle
    while True:
        state = await _bounded(bound, server.name, backend.state(server))
        if state == wanted or time.monotonic() >= deadline:
            return state
        await asyncio.sleep(poll)
