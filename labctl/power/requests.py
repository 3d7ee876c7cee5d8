"""Power requests: choose targets, guard quorum, and drive BMCs or PDUs in parallel.

The orchestration talks to a narrow ``PowerChannel`` (one per way of reaching
a server: its BMC, or the PDU outlets feeding it), so the order of operations,
the guard, the bounds and the result table are tested without hardware; the
channels built on the IPMI and SNMP drivers (``channels.py``) are tested
against real peers.
"""

from __future__ import annotations

import asyncio
import difflib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

from labctl.errors import DriverTimeout, LabctlError, UsageError
from labctl.inventory.model import Inventory, Server
from labctl.power.quorum import quorum_refusals

T = TypeVar("T")


class PowerVerb(StrEnum):
    """What a power command asks of a server (``labctl power VERB``)."""

    STATUS = "status"
    ON = "on"
    OFF = "off"
    CYCLE = "cycle"
    RESET = "reset"
    SOFT = "soft"


# The state each verb leaves a server in (None: no change asked).
TARGET_STATE: dict[PowerVerb, str | None] = {
    PowerVerb.STATUS: None,
    PowerVerb.ON: "on",
    PowerVerb.OFF: "off",
    PowerVerb.CYCLE: "on",
    PowerVerb.RESET: "on",
    PowerVerb.SOFT: "off",
}
# Actions that take a server down, if only for a moment: the quorum guard applies.
DISRUPTIVE = {PowerVerb.OFF, PowerVerb.CYCLE, PowerVerb.RESET, PowerVerb.SOFT}


class PowerChannel(Protocol):
    """One way to reach servers' power: their BMCs, or the PDU outlets feeding them."""

    name: str

    async def state(self, server: Server) -> str:
        """``on`` or ``off``; raise a LabctlError when it cannot be read."""
        ...

    async def act(self, server: Server, verb: PowerVerb) -> None: ...


@dataclass(frozen=True)
class TargetResult:
    server: str
    action: str
    before: str | None
    after: str | None
    seconds: float
    error: str | None = None
    error_detail: str | None = None  # the raw fault under ``error`` (an errno's text), if any
    steps: tuple[str, ...] = ()  # a soft stop's escalation: soft, then off, then the PDU

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__, steps=list(self.steps), ok=self.ok)


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
    channel: PowerChannel,
    going_down: Sequence[Server],
    bound: float,
    unwell: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """Refusals from the quorum guard, after reading every etcd/ceph-mon member's state.

    ``unwell`` (by role, then server) are members whose own service reports them
    unhealthy; see ``quorum_refusals``.
    """
    members = {s.name: s for s in inventory.servers if s.roles & {"etcd", "ceph-mon"}}
    if not members or not {s.name for s in going_down} & set(members):
        return []

    async def read(server: Server) -> tuple[str, bool | None]:
        try:
            state = await _bounded(bound, server.name, channel.state(server))
        except LabctlError:
            return server.name, None  # unknown counts as down
        return server.name, state == "on"

    states = dict(await asyncio.gather(*(read(s) for s in members.values())))
    return quorum_refusals(inventory, states, [s.name for s in going_down], unwell)


async def run_power(
    servers: Sequence[Server],
    verb: PowerVerb,
    channel: PowerChannel,
    *,
    bound: float = 30.0,
    settle: float = 60.0,
    concurrency: int = 64,
    poll: float = 0.5,
) -> list[TargetResult]:
    """Apply ``verb`` to every server in parallel and wait until each reaches its state.

    ``bound`` limits each single call to a device; ``settle`` limits how long a
    server may take to reach the asked state afterwards.
    """
    gate = asyncio.Semaphore(concurrency)
    wanted = TARGET_STATE[verb]

    async def one(server: Server) -> TargetResult:
        start = time.monotonic()
        before: str | None = None
        async with gate:
            try:
                before = await _bounded(bound, server.name, channel.state(server))
                if verb is PowerVerb.STATUS:
                    return TargetResult(
                        server.name, str(verb), before, before, time.monotonic() - start
                    )
                if not (verb in (PowerVerb.ON, PowerVerb.OFF, PowerVerb.SOFT) and before == wanted):
                    await _bounded(bound, server.name, channel.act(server, verb))
                after = await _wait_for(server, channel, wanted, bound, settle, poll)
            except LabctlError as exc:
                return TargetResult(
                    server.name,
                    str(verb),
                    before,
                    None,
                    time.monotonic() - start,
                    str(exc),
                    exc.detail,
                )
        error = None if after == wanted else f"still {after} after {settle:g} s (asked {wanted})"
        return TargetResult(server.name, str(verb), before, after, time.monotonic() - start, error)

    return list(await asyncio.gather(*(one(s) for s in servers)))


async def read_state(server: Server, channel: PowerChannel, bound: float) -> str:
    return await _bounded(bound, server.name, channel.state(server))


async def power_on(
    server: Server, channel: PowerChannel, *, bound: float, settle: float, poll: float = 0.5
) -> bool:
    """Make sure ``server`` is on; True when it was off. Errors raise, with their own type."""
    if await read_state(server, channel, bound) == "on":
        return False
    await _bounded(bound, server.name, channel.act(server, PowerVerb.ON))
    after = await _wait_for(server, channel, "on", bound, settle, poll)
    if after != "on":
        raise DriverTimeout(f"{server.name}: still {after} after {settle:g} s (asked on)")
    return True


async def _wait_for(
    server: Server,
    channel: PowerChannel,
    wanted: str | None,
    bound: float,
    settle: float,
    poll: float,
) -> str:
    deadline = time.monotonic() + settle
    while True:
        state = await _bounded(bound, server.name, channel.state(server))
        if state == wanted or time.monotonic() >= deadline:
            return state
        await asyncio.sleep(poll)


async def soft_escalating(
    server: Server,
    bmc: PowerChannel,
    pdu: Callable[[], PowerChannel | None],
    *,
    bound: float,
    soft_wait: float,
    settle: float,
    poll: float = 0.5,
    say: Callable[[str], None] = lambda _text: None,
) -> TargetResult:
    """Stop ``server``: ask the OS (ACPI) first; still on after ``soft_wait`` seconds, a
    hard off through the BMC; still on (or the BMC failing), its PDU outlets cut.

    ``pdu`` builds the PDU channel when it is needed (None: no outlet feeds the
    server, or its PDUs cannot be reached); every step taken is said and kept.
    """
    start = time.monotonic()
    steps: list[str] = []

    def result(after: str | None, error: str | None = None) -> TargetResult:
        action = ", then ".join(steps) or str(PowerVerb.SOFT)
        took = time.monotonic() - start
        return TargetResult(server.name, action, before, after, took, error, steps=tuple(steps))

    before: str | None = None
    try:
        before = await read_state(server, bmc, bound)
    except LabctlError as exc:
        say(f"{server.name}: the BMC does not answer ({exc}); cutting its PDU outlets")
    else:
        if before == "off":
            return result("off")
        steps.append("soft")
        say(f"{server.name}: soft stop asked (ACPI, through the BMC); up to {soft_wait:g} s")
        after = await _try(server, bmc, PowerVerb.SOFT, bound, soft_wait, poll)
        if after == "off":
            return result("off")
        if after.startswith("unknown"):
            say(f"{server.name}: not seen off after a soft stop, {after[9:-1]}; hard off (BMC)")
        else:
            say(f"{server.name}: still {after} {soft_wait:g} s after a soft stop; hard off (BMC)")
        steps.append("off")
        after = await _try(server, bmc, PowerVerb.OFF, bound, settle, poll)
        if after == "off":
            return result("off")
        if after.startswith("unknown"):
            say(f"{server.name}: the hard off failed, {after[9:-1]}; cutting its PDU outlets")
        else:
            say(f"{server.name}: still {after} after a hard off; cutting its PDU outlets")
    outlets = pdu()
    if outlets is None:
        return result(None, "not off, and no PDU outlet in the inventory feeds it to cut")
    steps.append("pdu off")
    after = await _try(server, outlets, PowerVerb.OFF, bound, settle, poll)
    if after != "off":
        return result(after, f"still {after} after its outlets were cut")
    say(
        f"{server.name}: off at its PDU outlets; `labctl power on {server.name} --via pdu` "
        "switches them back on"
    )
    return result(after)


async def _try(
    server: Server, channel: PowerChannel, verb: PowerVerb, bound: float, settle: float, poll: float
) -> str:
    """``verb`` through ``channel`` and the state reached within ``settle`` (``unknown``
    when the device fails: the next step of an escalation is taken then)."""
    try:
        await _bounded(bound, server.name, channel.act(server, verb))
        return await _wait_for(server, channel, TARGET_STATE[verb], bound, settle, poll)
    except LabctlError as exc:
        return f"unknown ({exc})"
