"""Graceful power: the switches' lines per platform (pure), and a soft stop's escalation.

The escalation runs on fake channels, as tests/unit/test_power_orchestration.py's
do, to order and time the steps; tests/e2e/test_power_restore_lab.py drives the real
FRR switches and BMCs of the simulated lab.
"""

from __future__ import annotations

import asyncio

import pytest

from labctl.calico.graceful import DRAIN, Neighbor, drain_lines, neighbors, still_via, undrain_lines
from labctl.errors import DriverTimeout
from labctl.inventory import load_inventory
from labctl.inventory.model import Inventory, Server
from labctl.power.requests import PowerVerb, TargetResult, soft_escalating
from tests.conftest import REFERENCE


@pytest.fixture(scope="module")
def inv() -> Inventory:
    inventory = load_inventory(REFERENCE).inventory
    assert inventory is not None
    return inventory


def test_a_node_s_switch_sessions_are_its_neighbors(inv: Inventory) -> None:
    assert neighbors(inv, inv.server("wind")) == [
        Neighbor("kek-core", 64513, "31.31.164.222"),
        Neighbor("astrid", 64514, "31.31.164.222"),
    ]


def test_drain_lines_per_platform_keep_the_import_filter(inv: Inventory) -> None:
    n = Neighbor("kek-core", 64513, "31.31.164.222")
    assert drain_lines("frr", n) == [
        f"route-map {DRAIN} permit 10",
        " match ip address prefix-list CALICO-IN",
        " set local-preference 0",
        " set community 65535:0 additive",
        "exit",
        "router bgp 64513",
        "address-family ipv4 unicast",
        f"neighbor 31.31.164.222 route-map {DRAIN} in",
    ]
    eos = drain_lines("eos", n)
    assert "   set local-preference 0" in eos and "address-family ipv4 unicast" not in eos
    ios = drain_lines("ios", n)
    assert ios[-1] == "clear ip bgp 31.31.164.222 soft in"
    assert undrain_lines("frr", n)[-1] == f"no neighbor 31.31.164.222 route-map {DRAIN} in"
    with pytest.raises(Exception, match="no graceful shutdown rendered"):
        drain_lines("junos", n)


def test_routes_have_moved_when_only_routes_with_no_other_path_stay() -> None:
    wind, fohn = "31.31.164.222", "31.31.164.220"
    before = {"10.188.0.64/26": [fohn, wind], "10.188.0.128/26": [wind], "10.189.0.0/16": [fohn]}
    assert still_via(before, wind) == ["10.188.0.64/26"]
    after = {"10.188.0.64/26": [fohn], "10.188.0.128/26": [wind]}
    assert still_via(after, wind) == []


class Board:
    """One server's power as its BMC and its outlets see it: the OS may ignore a soft
    stop, the BMC may ignore a hard one; the outlets always cut it."""

    name = "fake"

    def __init__(
        self, os_stops: bool, bmc_works: bool, bmc_answers: bool = True, dies: bool = False
    ) -> None:
        self.power = "on"
        self.os_stops, self.bmc_works, self.bmc_answers = os_stops, bmc_works, bmc_answers
        self.dies = dies  # the BMC stops answering once it has taken the soft request
        self.asked: list[str] = []

    async def state(self, server: Server) -> str:
        if not self.bmc_answers:
            raise DriverTimeout(f"{server.name} BMC: no answer")
        return self.power

    async def act(self, server: Server, verb: PowerVerb) -> None:
        if not self.bmc_answers:
            raise DriverTimeout(f"{server.name} BMC: no answer")
        self.asked.append(f"bmc {verb}")
        if self.dies:
            self.bmc_answers = False
        if verb is PowerVerb.SOFT and self.os_stops:
            self.power = "off"
        if verb is PowerVerb.OFF and self.bmc_works:
            self.power = "off"


class Outlets:
    name = "pdu"

    def __init__(self, board: Board) -> None:
        self.board = board

    async def state(self, server: Server) -> str:
        return self.board.power

    async def act(self, server: Server, verb: PowerVerb) -> None:
        self.board.asked.append(f"pdu {verb}")
        self.board.power = "off"


def _stop(inv: Inventory, board: Board, fed: bool = True) -> tuple[TargetResult, list[str]]:
    said: list[str] = []
    result = asyncio.run(
        soft_escalating(
            inv.server("wind"),
            board,
            lambda: Outlets(board) if fed else None,
            bound=0.5,
            soft_wait=0.2,
            settle=0.2,
            poll=0.02,
            say=said.append,
        )
    )
    return result, said


@pytest.mark.parametrize(
    ("os_stops", "bmc_works", "asked", "steps"),
    [
        (True, True, ["bmc soft"], ("soft",)),
        (False, True, ["bmc soft", "bmc off"], ("soft", "off")),
        (False, False, ["bmc soft", "bmc off", "pdu off"], ("soft", "off", "pdu off")),
    ],
)
def test_a_soft_stop_escalates_to_hard_then_to_the_pdu_each_step_said(
    inv: Inventory, os_stops: bool, bmc_works: bool, asked: list[str], steps: tuple[str, ...]
) -> None:
    board = Board(os_stops, bmc_works)
    result, said = _stop(inv, board)
    assert result.ok and result.after == "off"
    assert board.asked == asked
    assert result.steps == steps
    assert said[0] == "wind: soft stop asked (ACPI, through the BMC); up to 0.2 s"
    # Each escalation said, and where the outlets were cut, how to switch them back.
    assert len(said) == len(steps) + (1 if "pdu off" in steps else 0)
    if len(steps) > 1:
        assert "still on 0.2 s after a soft stop; hard off (BMC)" in said[1]
    if "pdu off" in steps:
        assert "still on after a hard off; cutting its PDU outlets" in said[2]
        assert "`labctl power on wind --via pdu` switches them back on" in said[3]


def test_a_bmc_that_dies_after_the_soft_request_is_not_waited_on_and_the_pdu_cuts(
    inv: Inventory,
) -> None:
    board = Board(os_stops=False, bmc_works=True, dies=True)
    result, said = _stop(inv, board)
    assert result.ok and result.after == "off"
    assert result.steps == ("soft", "off", "pdu off")
    assert board.asked == ["bmc soft", "pdu off"]  # the hard off never reached the BMC
    assert "not seen off after a soft stop, wind BMC: no answer; hard off (BMC)" in said[1]
    assert "the hard off failed" in said[2] and "cutting its PDU outlets" in said[2]


def test_a_dead_bmc_goes_straight_to_the_pdu_and_no_pdu_is_an_error(inv: Inventory) -> None:
    board = Board(os_stops=True, bmc_works=True, bmc_answers=False)
    result, said = _stop(inv, board)
    assert board.asked == ["pdu off"] and result.ok
    assert "the BMC does not answer" in said[0]
    board = Board(os_stops=False, bmc_works=False)
    result, _ = _stop(inv, board, fed=False)
    assert not result.ok
    assert "no PDU outlet" in str(result.error)
