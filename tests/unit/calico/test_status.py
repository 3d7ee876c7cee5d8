"""What FRR and BIRD 1.6 say, read and held against the inventory's fabric.

The inputs are recorded from the real daemons (tests/fixtures/bgp/: FRR 8.4.4 on
kek-core with only fohn's BIRD 1.6.8 up, by tests/peers/bgp.py), so the parsers
meet the daemons' own formats; the integration test reads them live.
"""

from __future__ import annotations

import json

import pytest

from labctl.calico import status
from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from tests.conftest import FIXTURES, REFERENCE

BGP = FIXTURES / "bgp"


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return require_inventory(REFERENCE)


def test_frr_summary_gives_each_peers_state() -> None:
    peers = status.frr_peers((BGP / "frr-kek-core-summary.json").read_text())
    assert peers == {
        "31.31.164.220": "Established",
        "31.31.164.221": "Connect",
        "31.31.164.222": "Connect",
    }


def test_frr_routes_keep_installed_bgp_routes_with_their_next_hops() -> None:
    routes = status.frr_bgp_routes((BGP / "frr-kek-core-routes.json").read_text())
    assert routes["10.188.0.0/26"] == ["31.31.164.220"]
    # The public /28 is announced too, but the switch's connected route wins it.
    assert set(routes) == {"10.188.0.0/26", "10.189.0.0/16"}
    assert "31.31.164.208/28" in (BGP / "frr-kek-core-routes.json").read_text()


def test_a_route_not_installed_is_not_learned() -> None:
    data = json.loads((BGP / "frr-kek-core-routes.json").read_text())
    data["10.188.0.0/26"][0]["installed"] = False
    assert "10.188.0.0/26" not in status.frr_bgp_routes(json.dumps(data))


def test_birdc_protocols_keep_birds_words_for_a_session_that_is_down() -> None:
    protocols = status.bird_protocols((BGP / "bird-fohn-protocols.txt").read_text())
    assert protocols == {
        "Mesh_31_31_164_221": "Passive",
        "Mesh_31_31_164_222": "Passive",
        "Global_31_31_164_210": "Established",
        "Global_31_31_164_211": "Connect Socket: No route to host",
    }


def test_assembled_status_names_every_down_session_and_missing_block(
    inventory: Inventory,
) -> None:
    kek = status.frr_peers((BGP / "frr-kek-core-summary.json").read_text())
    routes = status.frr_bgp_routes((BGP / "frr-kek-core-routes.json").read_text())
    fohn = status.bird_protocols((BGP / "bird-fohn-protocols.txt").read_text())
    fabric = status.assemble(
        inventory,
        {"kek-core": kek},
        {"kek-core": routes},
        {"fohn": fohn},
        {"astrid": "SSH: connection refused"},
    )
    assert not fabric.ok
    up = [(s.node, s.peer) for s in fabric.sessions if s.established]
    assert up == [("fohn", "kek-core")]
    problems = fabric.problems
    assert problems[0] == "astrid did not answer: SSH: connection refused"
    assert (
        "session fohn - astrid (31.31.164.211) is down: fohn says Connect Socket: No route to host"
        in problems
    )
    assert "session chequita - kek-core (31.31.164.210) is down: kek-core says Connect" in problems
    # Neither end read (chequita's BIRD was not asked, fohn is the passive end): unknown.
    unknown = next(x for x in fabric.sessions if (x.node, x.peer) == ("chequita", "fohn"))
    assert unknown.established is None
    assert not any("chequita - fohn" in p for p in problems)
    assert problems[-1] == (
        "kek-core has not learned chequita's block 10.188.0.64/26, wind's block 10.188.0.128/26"
    )
    as_json = fabric.as_dict()
    assert as_json["ok"] is False and len(as_json["sessions"]) == 12
    json.dumps(as_json)  # what -o json prints
