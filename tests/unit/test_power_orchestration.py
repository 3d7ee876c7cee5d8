"""Power orchestration with a fake channel: targets, order, bounds, the guard."""

from __future__ import annotations

import asyncio
import time

import pytest

from labctl.errors import DriverTimeout, UsageError
from labctl.inventory import load_inventory
from labctl.inventory.model import Inventory, Server
from labctl.power.requests import PowerVerb, guard_quorum, run_power, select_targets
from tests.conftest import REFERENCE


@pytest.fixture(scope="module")
def inv() -> Inventory:
    inventory = load_inventory(REFERENCE).inventory
    assert inventory is not None
    return inventory


class FakeBmcs:
    """Servers whose power follows actions after ``delay``; some BMCs are dead."""

    name = "fake"

    def __init__(self, states: dict[str, str], delay: float = 0.05, dead: set[str] | None = None):
        self.states = dict(states)
        self.delay = delay
        self.dead = dead or set()
        self.acts: list[tuple[str, str]] = []

    async def state(self, server: Server) -> str:
        if server.name in self.dead:
            await asyncio.sleep(3600)
        return self.states[server.name]

    async def act(self, server: Server, verb: PowerVerb) -> None:
        if server.name in self.dead:
            raise DriverTimeout(f"{server.name}: BMC did not answer")
        self.acts.append((server.name, str(verb)))

        async def later() -> None:
            await asyncio.sleep(self.delay)
            self.states[server.name] = "off" if verb in (PowerVerb.OFF, PowerVerb.SOFT) else "on"

        asyncio.get_running_loop().create_task(later())


def test_select_targets(inv: Inventory) -> None:
    assert [s.name for s in select_targets(inv, ["wind", "fohn"], False, None)] == ["fohn", "wind"]
    assert len(select_targets(inv, [], True, None)) == 3
    assert [s.name for s in select_targets(inv, [], False, "control-plane")] == ["fohn"]
    with pytest.raises(UsageError, match="did you mean fohn"):
        select_targets(inv, ["fhon"], False, None)
    with pytest.raises(UsageError, match="--all"):
        select_targets(inv, [], False, None)
    with pytest.raises(UsageError, match="no server has the role"):
        select_targets(inv, [], False, "ceph-rgw")


def test_off_waits_until_off_and_skips_servers_already_there(inv: Inventory) -> None:
    bmcs = FakeBmcs({"fohn": "on", "chequita": "off", "wind": "on"})
    results = asyncio.run(run_power(inv.servers, PowerVerb.OFF, bmcs, poll=0.01))
    assert [(r.server, r.before, r.after, r.ok) for r in results] == [
        ("fohn", "on", "off", True),
        ("chequita", "off", "off", True),
        ("wind", "on", "off", True),
    ]
    assert sorted(bmcs.acts) == [("fohn", "off"), ("wind", "off")]


def test_a_dead_bmc_costs_at_most_its_bound_and_others_succeed(inv: Inventory) -> None:
    bmcs = FakeBmcs({"fohn": "off", "chequita": "off", "wind": "off"}, dead={"chequita"})
    start = time.monotonic()
    results = asyncio.run(run_power(inv.servers, PowerVerb.ON, bmcs, bound=0.3, poll=0.01))
    assert time.monotonic() - start < 1.5
    by_name = {r.server: r for r in results}
    assert by_name["fohn"].ok and by_name["wind"].ok
    assert not by_name["chequita"].ok
    assert "no answer within 0.3 s" in (by_name["chequita"].error or "")


def test_a_server_that_never_gets_there_is_reported(inv: Inventory) -> None:
    bmcs = FakeBmcs({"fohn": "on", "chequita": "on", "wind": "on"}, delay=10)
    (result,) = asyncio.run(run_power(inv.servers[:1], PowerVerb.OFF, bmcs, settle=0.2, poll=0.05))
    assert not result.ok and result.after == "on"
    assert "still on after 0.2 s" in (result.error or "")


def test_guard_refuses_a_second_etcd_member(inv: Inventory) -> None:
    bmcs = FakeBmcs({"fohn": "on", "chequita": "off", "wind": "on"})
    refusals = asyncio.run(guard_quorum(inv, bmcs, [inv.server("fohn")], bound=1))
    assert refusals and "chequita is already down" in refusals[0]
    assert (
        asyncio.run(
            guard_quorum(
                inv,
                FakeBmcs(dict.fromkeys(["fohn", "chequita", "wind"], "on")),
                [inv.server("fohn")],
                1,
            )
        )
        == []
    )


def test_guard_counts_an_unreadable_member_as_down(inv: Inventory) -> None:
    bmcs = FakeBmcs(dict.fromkeys(["fohn", "chequita", "wind"], "on"), dead={"wind"})
    refusals = asyncio.run(guard_quorum(inv, bmcs, [inv.server("fohn")], bound=0.2))
    assert refusals and "wind is already down or unknown" in refusals[0]
