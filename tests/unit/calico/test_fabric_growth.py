"""The BGP fabric's renders grow with the mesh's size, not faster (issue 28, item 3).

A node-to-node mesh of n nodes has n*(n-1) sessions: that is what rendering every
node's BIRD configuration must cost. Each node's configuration used to work out
every session of the lab and keep its own (n^3 in all), and every switch's the
same: `labctl plan` at 250 generated servers spent 43 s in calico-resources'
digest. These count the sessions made (deterministic, no clock) and check that a
node's or a switch's sessions are exactly the lab-wide ones filtered.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from labctl.engine.layer import LayerContext
from labctl.inventory import check_text, topology
from labctl.inventory.model import Inventory
from labctl.layers.calico import fabric_digest
from labctl.sim.render import bird

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from gen_inventory import generate  # benchmarks/ holds scripts, not a package

COUNT = 40


def _generated(count: int, peers: bool = False) -> Inventory:
    data = generate(count)
    if peers:  # every node also peers with the first top-of-rack switch
        tor = data["switches"][0]
        tor["asn"] = 65010
        tor["router_id"] = "100.64.255.254"
        tor["interfaces"] = [{"network": "public", "address": "100.64.255.254"}]
        data["cluster"]["calico"]["peers"] = [
            {"switch": tor["name"], "address": "100.64.255.254", "nodes": "all"}
        ]
    result = check_text(yaml.safe_dump(data), "generated.yaml")
    assert result.inventory is not None and not result.errors, result.errors[:3]
    return result.inventory


@pytest.fixture(scope="module")
def mesh() -> Inventory:
    return _generated(COUNT, peers=True)


def test_each_node_and_switch_sees_the_lab_wide_sessions_filtered(mesh: Inventory) -> None:
    everything = topology.sessions(mesh)
    assert len(everything) == COUNT * (COUNT - 1) + COUNT  # the mesh, and one switch each
    for server in mesh.servers[:5]:
        own = [s for s in everything if s.node == server.name]
        assert topology.sessions(mesh, node=server.name) == own
    tor = mesh.switches[0].name
    assert topology.switch_sessions(mesh, tor) == [
        s for s in everything if s.kind == "switch" and s.peer == tor
    ]
    assert [s.name for s in topology.peering_switches(mesh)] == [tor]
    assert topology.blocks(mesh) == {
        s.name: topology.node_block(mesh, s) for s in mesh.servers if topology.node_block(mesh, s)
    }


def test_rendering_every_node_makes_each_session_once(
    mesh: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = 0
    real = topology.protocol_name

    def counted(prefix: str, address: str) -> str:
        nonlocal made
        made += 1
        return real(prefix, address)

    monkeypatch.setattr(topology, "protocol_name", counted)
    configs = [bird.config(mesh, s) for s in mesh.servers]
    assert all("protocol bgp Mesh_" in c for c in configs)
    # n*(n-1) mesh sessions and n switch sessions: each made once (main made n times that)
    assert made == COUNT * (COUNT - 1) + COUNT


def test_fabric_digest_grows_with_the_mesh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = 0
    real = topology.protocol_name

    def counted(prefix: str, address: str) -> str:
        nonlocal made
        made += 1
        return real(prefix, address)

    monkeypatch.setattr(topology, "protocol_name", counted)
    inventory = _generated(COUNT)
    fabric_digest(LayerContext(inventory, tmp_path / "inventory.yaml", tmp_path / "state"))
    assert made <= COUNT * (COUNT - 1) + COUNT
