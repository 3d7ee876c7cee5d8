"""`labctl sim up` on a lab that is up: which servers it adds, removes or makes again
(labctl/sim/plan.py's ``resize``, pure), from the inventory and what the lab has."""

from __future__ import annotations

import json
from pathlib import Path

from labctl.inventory import require_inventory
from labctl.sim.pdu_outlets import Outlets
from labctl.sim.pdu_record import for_model
from labctl.sim.plan import Resize, build_plan, resize
from tests.conftest import REFERENCE
from tests.day_two import NEW_SERVER, changed_inventory, write_beside

PLAN = build_plan(require_inventory(REFERENCE))


def running() -> dict[str, dict[str, str]]:
    return {n.name: {nic.name: nic.mac for nic in n.nics} for n in PLAN.nodes}


def test_a_lab_as_the_inventory_says_changes_nothing() -> None:
    assert not resize(PLAN, running())
    assert resize(PLAN, running()) == Resize((), (), ())


def test_a_server_new_to_the_inventory_joins(tmp_path: Path) -> None:
    inventory = write_beside(
        tmp_path / "inventory.yaml", "inventory.yaml", changed_inventory(REFERENCE.read_text())
    )
    grown = build_plan(require_inventory(inventory))
    assert resize(grown, running()) == Resize((NEW_SERVER,), (), ())
    # Its veths take the next index: the running servers' names do not move.
    assert [n.nics[0].peer for n in grown.nodes[:3]] == [n.nics[0].peer for n in PLAN.nodes]


def test_a_server_gone_from_the_inventory_leaves_and_other_macs_are_another_machine() -> None:
    lab = running()
    lab["typhoon"] = {"eno1": "00:11:22:33:44:55"}
    lab["wind"] = dict(lab["wind"], eno1="78:e7:d1:7a:8b:99")
    lab["chequita"] = {}  # its MACs could not be read: not taken for a replacement
    assert resize(PLAN, lab) == Resize((), ("typhoon",), ("wind",))


def test_a_pdu_agent_reads_its_outlets_hooks_again_at_each_switch(tmp_path: Path) -> None:
    """A lab that grows wires a new server to an outlet of a PDU whose agent runs on."""
    record = for_model("Digipower SWH-1023J-08N1", where="PDU pdu1").path
    config: dict[str, object] = {"outlet_count": 8, "record": str(record), "hooks": {}}
    (tmp_path / "pdu.json").write_text(json.dumps(config))
    outlets = Outlets(tmp_path)
    mark = tmp_path / "fed"
    config["hooks"] = {"6": {"off": ["touch", str(mark)], "on": ["touch", str(mark)]}}
    (tmp_path / "pdu.json").write_text(json.dumps(config))
    outlets.switch(6, False)
    assert mark.exists()
