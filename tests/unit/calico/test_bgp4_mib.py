"""BGP4-MIB rows as a switch's peer states and best routes, and where each switch is read.

The rows are recorded from the real agent (tests/fixtures/bgp/bgp4-mib-kek-core.json:
FRR 8.4.4's bgpd on kek-core attached over AgentX to net-snmp 5.9.3's snmpd, only
fohn's BIRD 1.6.8 up, walked by labctl's driver); the integration test reads them live.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from labctl.calico import bgp4_mib, status, switch_snmp
from labctl.cli.main import app
from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from tests.conftest import FIXTURES, REFERENCE

ROWS: dict[str, Any] = json.loads((FIXTURES / "bgp" / "bgp4-mib-kek-core.json").read_text())


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return require_inventory(REFERENCE)


def test_peer_table_gives_each_peers_state_in_frrs_words() -> None:
    assert bgp4_mib.peer_states(ROWS) == {
        "31.31.164.220": "Established",
        "31.31.164.221": "Connect",
        "31.31.164.222": "Connect",
    }
    fohn = bgp4_mib.peers(ROWS)["31.31.164.220"]
    assert (fohn.remote_as, fohn.established_for) == (64512, 5)


def test_a_peer_is_named_by_its_index_not_the_remote_address_column() -> None:
    # FRR's bgpPeerRemoteAddr says 0.0.0.0 until the session connects.
    assert ROWS["1.3.6.1.2.1.15.3.1.7.31.31.164.221"] == "0.0.0.0"
    assert "0.0.0.0" not in bgp4_mib.peers(ROWS)


def test_routes_are_what_frrs_json_says_is_installed_and_what_it_holds_besides() -> None:
    from_json = status.frr_bgp_routes((FIXTURES / "bgp" / "frr-kek-core-routes.json").read_text())
    routes = bgp4_mib.routes(ROWS)
    # The public /28 has a path, not installed: the switch's connected route wins it.
    # BGP4-MIB cannot tell installed from held.
    assert set(routes) == set(from_json) | {"31.31.164.208/28"}
    assert {p: routes[p] for p in from_json} == from_json


def test_add_path_rows_that_are_never_best_still_count_as_learned() -> None:
    # One row per prefix and peer: under ADD-PATH the row the agent shows may not be
    # the peer's best path (FRR 8.4 on the simulated lab: 10.189.0.0/16 from three
    # nodes, best false on every row, while FRR had a best path from 31.31.164.220).
    base = "1.3.6.1.2.1.15.6.1"
    rows: dict[str, int | str] = {
        f"{base}.6.10.189.0.0.16.31.31.164.220": "31.31.164.220",
        f"{base}.13.10.189.0.0.16.31.31.164.220": 1,
        f"{base}.6.10.189.0.0.16.31.31.164.221": "31.31.164.221",
        f"{base}.13.10.189.0.0.16.31.31.164.221": 1,
        f"{base}.6.10.188.0.64.26.31.31.164.220": "31.31.164.220",
        f"{base}.13.10.188.0.64.26.31.31.164.220": 2,
        f"{base}.6.10.188.0.64.26.31.31.164.221": "31.31.164.221",
        f"{base}.13.10.188.0.64.26.31.31.164.221": 1,
    }
    assert bgp4_mib.routes(rows) == {
        "10.189.0.0/16": ["31.31.164.220", "31.31.164.221"],  # no best row: every next hop
        "10.188.0.64/26": ["31.31.164.220"],  # the best row's
    }


def test_a_prefix_without_a_path_row_is_not_learned() -> None:
    rows = {oid: v for oid, v in ROWS.items() if ".10.188.0.0.26." not in oid}
    assert "10.188.0.0/26" not in bgp4_mib.routes(rows)
    assert "10.189.0.0/16" in bgp4_mib.routes(rows)


@pytest.mark.parametrize(
    ("value", "state"), [(1, "Idle"), (3, "Active"), (6, "Established"), (9, "state 9")]
)
def test_every_fsm_state_has_a_name(value: int, state: str) -> None:
    assert bgp4_mib.peer_states({"1.3.6.1.2.1.15.3.1.2.10.0.0.1": value}) == {"10.0.0.1": state}


def test_rows_of_other_tables_are_ignored() -> None:
    assert bgp4_mib.peers({"1.3.6.1.2.1.15.2.0": 64513}) == {}
    assert bgp4_mib.routes({"1.3.6.1.2.1.15.3.1.2.10.0.0.1": 6}) == {}


def test_where_each_switch_is_read(inventory: Inventory) -> None:
    kek, astrid, tor = (
        next(s for s in inventory.switches if s.name == n) for n in ("kek-core", "astrid", "tor")
    )
    assert switch_snmp.source(replace(kek, bgp_status=None)) == "ssh-frr"  # platform frr
    assert switch_snmp.source(replace(astrid, bgp_status=None)) is None  # EOS: not over SSH
    assert switch_snmp.source(replace(astrid, bgp_status=None), "frr") == "ssh-frr"  # the sim
    assert switch_snmp.source(replace(astrid, bgp_status="snmp"), "frr") == "snmp"
    assert switch_snmp.source(tor) is None


def test_a_switch_read_over_snmp_is_judged_like_one_read_over_ssh(inventory: Inventory) -> None:
    peers, routes = bgp4_mib.peer_states(ROWS), bgp4_mib.routes(ROWS)
    over_snmp = status.assemble(
        inventory, {"kek-core": peers}, {"kek-core": routes}, {}, {}, {"kek-core": "snmp"}
    )
    frr_peers = status.frr_peers((FIXTURES / "bgp" / "frr-kek-core-summary.json").read_text())
    frr_routes = status.frr_bgp_routes((FIXTURES / "bgp" / "frr-kek-core-routes.json").read_text())
    over_ssh = status.assemble(inventory, {"kek-core": frr_peers}, {"kek-core": frr_routes}, {}, {})
    assert over_snmp.problems == over_ssh.problems
    assert [s.source for s in over_snmp.switches] == ["snmp"]
    assert over_snmp.as_dict()["switches"][0]["source"] == "snmp"


def test_bgp_status_names_a_missing_snmp_secret_before_asking_anything(tmp_path: Path) -> None:
    from labctl.errors import SecretError

    # The reference inventory reads astrid over SNMP, its keys from the environment.
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(REFERENCE.read_text())
    start = time.monotonic()
    done = CliRunner().invoke(
        app, ["bgp", "status", "-i", str(inventory)], env={"LABCTL_SWITCH_SNMP_AUTH_KEY": None}
    )
    assert time.monotonic() - start < 5  # no device was waited for
    assert isinstance(done.exception, SecretError)
    assert str(done.exception) == (
        "switches[1].snmp.auth_key: environment variable LABCTL_SWITCH_SNMP_AUTH_KEY is not set"
    )
