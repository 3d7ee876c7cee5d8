"""Graceful power's drain check reads each switch's running configuration once (issue 28).

A converged bootstrap's power layer finds every server on and asks, for each, whether
labctl's drain is still on its sessions (a call-back that timed out leaves a server
drained, and the next run must call it back). Each switch's running configuration
answers that for every server: on main it was read once per server and switch (3
servers, 2 switches: 6 reads, each a ``vtysh`` start on FRR). Against the CLI peer behind
a real sshd (tests/peers/cli_switch.py, which logs every show command), a ``Fabric``
now reads it once per switch for all the servers it is asked about, at once as the
bootstrap's power steps ask, and reads it again after it configured that switch, so a
server left drained by an earlier run is still found and called back, and a call-back
is seen done.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from labctl.calico.graceful import DRAIN, neighbors
from labctl.inventory import load_inventory
from labctl.inventory.model import Inventory
from tests.conftest import REFERENCE
from tests.integration.test_graceful_switch_cli import IOS_ANSWERS, Peer, _fabric, cli_peers

pytestmark = pytest.mark.integration

RUNNING = "show running-config"


@pytest.fixture(scope="module")
def inv() -> Inventory:
    inventory = load_inventory(REFERENCE).inventory
    assert inventory is not None
    return inventory


def reads(peer: Peer) -> int:
    return sum(1 for e in peer.log() if e.get("exec") == RUNNING)


def test_one_running_config_read_per_switch_serves_every_server(
    inv: Inventory, tmp_path: Path
) -> None:
    wind = inv.server("wind")
    with cli_peers(tmp_path, "ios", IOS_ANSWERS) as peers:
        # An earlier run drained wind and its call-back timed out: wind is left drained.
        said = _fabric(inv, tmp_path, "ios", peers).drain(wind, timeout=10, poll=0.1)
        assert any("routes moved off it" in s for s in said), said
        before = {name: reads(peer) for name, peer in peers.items()}

        # This run's Fabric: every server found on is asked about, at once.
        fabric = _fabric(inv, tmp_path, "ios", peers)
        with ThreadPoolExecutor(max_workers=3) as pool:
            found = dict(
                zip(
                    [s.name for s in inv.servers],
                    pool.map(fabric.drained, inv.servers),
                    strict=True,
                )
            )
        assert {k: [n.switch for n in v] for k, v in found.items()} == {
            "fohn": [],
            "chequita": [],
            "wind": [n.switch for n in neighbors(inv, wind)],
        }
        # One read per switch for the three servers (on main: three per switch).
        assert {name: reads(peer) - before[name] for name, peer in peers.items()} == {
            "kek-core": 1,
            "astrid": 1,
        }

        # The check is kept: wind is called back, and the switches are read again after
        # this Fabric configured them (the route map's removal decided on a fresh read).
        said = fabric.call_back(wind, timeout=5, poll=0.1)
        assert len(said) == 1 and "called back" in said[0], said
        for peer in peers.values():
            assert DRAIN not in peer.running()
        assert fabric.drained(wind) == []
        assert all(reads(peer) - before[name] == 3 for name, peer in peers.items())


def test_a_drain_this_fabric_sets_is_seen_by_its_next_check(inv: Inventory, tmp_path: Path) -> None:
    wind = inv.server("wind")
    with cli_peers(tmp_path, "ios", IOS_ANSWERS) as peers:
        fabric = _fabric(inv, tmp_path, "ios", peers)
        assert fabric.drained(wind) == []  # read and kept: nothing drained yet
        fabric.drain(wind, timeout=10, poll=0.1)
        # The drain configured both switches: the kept reads are not used again.
        assert [n.switch for n in fabric.drained(wind)] == ["kek-core", "astrid"]
