"""What a real lab needs that the simulated one stands in for: no false success.

A real lab with no Calico manifest is refused before anything is written (LAB120),
as is one peering with a switch whose sessions labctl cannot read (LAB121); the
simulated lab gets a note instead. The waits a real lab plans fail naming what is
missing: a switch session no answer covers fails at once (the switches' answers
are the recorded FRR 8.4.4 ones of tests/fixtures/bgp/, as in test_status.py), and
a Node that is not Ready is named with its kubelet's words.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from labctl.calico import status
from labctl.calico.fabric import BgpSession
from labctl.errors import LabctlError
from labctl.inventory import require_for_lab, require_inventory
from labctl.inventory.model import Inventory
from labctl.kubernetes.api import NodeState, not_ready_reasons
from tests.conftest import FIXTURES, REFERENCE
from tests.labctl_process import run_labctl

BGP = FIXTURES / "bgp"
# The position of cluster.calico in the reference inventory (its first key, version),
# read from the file so an edit above it does not move the test's target.
CALICO_AT = f"inventory.yaml:{REFERENCE.read_text().splitlines().index('  calico:') + 2}:5"
NOT_SIMULATED = {"LABCTL_CALICO_BIRD": None}


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return require_inventory(REFERENCE)


def test_bootstrap_on_a_real_lab_without_a_manifest_refuses_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """On main this went on: stand-in definitions applied, no wait, the run said ok."""
    work = tmp_path / "lab"
    work.mkdir()
    (work / "inventory.yaml").write_text(REFERENCE.read_text())
    state = work / ".labctl"
    for command in (["bootstrap"], ["bootstrap", "--only", "calico-resources"], ["plan"]):
        done = run_labctl(
            *command, "--state-dir", str(state), cwd=work, env=NOT_SIMULATED, timeout=60
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"{CALICO_AT}: error LAB120 cluster.calico: no cluster.calico.manifest" in (
            done.stderr
        )
        assert not state.exists(), f"{command}: wrote {list(state.iterdir())}"
    assert sorted(p.name for p in work.iterdir()) == ["inventory.yaml"]


def test_only_the_layers_that_need_the_manifest_are_refused(tmp_path: Path) -> None:
    """Powering a real lab on or configuring its switches does not need Calico's manifest."""
    from labctl.layers import LAYERS

    needs = {layer.name for layer in LAYERS if getattr(layer, "lab_checks", ())}
    assert needs == {"calico-resources"}
    model, notes = require_for_lab(REFERENCE, False, [])
    assert model.cluster.calico.manifest is None and notes == []


def test_the_simulated_lab_gets_a_note_not_an_error() -> None:
    _, notes = require_for_lab(REFERENCE, True, ["LAB120", "LAB121"])
    assert [n.check_id for n in notes] == ["LAB120"]
    assert "a real lab's bootstrap refuses to go on without the manifest" in notes[0].message


def test_validate_says_so_where_it_is_told_the_lab_kind() -> None:
    real = run_labctl("validate", "--lab", "real", "inventory.yaml", cwd=REFERENCE.parent)
    assert real.returncode == 1
    assert f"{CALICO_AT}: error LAB120 cluster.calico: " in real.stdout
    sim = run_labctl("validate", "--lab", "simulated", "inventory.yaml", cwd=REFERENCE.parent)
    assert sim.returncode == 0
    assert f"{CALICO_AT}: note LAB120 cluster.calico: " in sim.stdout
    # Inside `labctl sim env`'s environment the simulated lab is the default.
    env = run_labctl(
        "validate", "inventory.yaml", cwd=REFERENCE.parent, env={"LABCTL_CALICO_BIRD": "/bird"}
    )
    assert env.returncode == 0 and f"{CALICO_AT}: note LAB120" in env.stdout
    # Told nothing, validate cannot know which lab the file drives: no lab check runs.
    plain = run_labctl("validate", "inventory.yaml", cwd=REFERENCE.parent, env=NOT_SIMULATED)
    assert plain.returncode == 0 and "LAB120" not in plain.stdout


def _recorded(inventory: Inventory) -> status.FabricStatus:
    """kek-core as recorded (fohn up, chequita and wind in Connect), astrid unread."""
    kek = status.frr_peers((BGP / "frr-kek-core-summary.json").read_text())
    routes = status.frr_bgp_routes((BGP / "frr-kek-core-routes.json").read_text())
    return status.assemble(inventory, {"kek-core": kek}, {"kek-core": routes}, {}, {})


def test_a_switch_session_read_from_neither_end_is_not_established(
    inventory: Inventory,
) -> None:
    """On main a real lab's session with a switch nobody read counted as fine."""
    fabric = _recorded(inventory)
    assert fabric.unread == [
        f"session {node} - astrid (31.31.164.211) was read from neither end "
        "(astrid gives labctl no BGP state: set its bgp_status)"
        for node in ("fohn", "chequita", "wind")
    ]
    # A switch that did not answer is named as such, not as unread.
    silent = status.assemble(inventory, {}, {}, {}, {"astrid": "timeout", "kek-core": "refused"})
    assert silent.unread == []


class _Recorded(BgpSession):
    def __init__(self, inventory: Inventory, answers: list[status.FabricStatus]) -> None:
        super().__init__(inventory, REFERENCE.parent)
        self.answers = answers

    def status(self) -> status.FabricStatus:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_the_real_lab_wait_fails_at_once_on_an_unread_session(inventory: Inventory) -> None:
    session = _Recorded(inventory, [_recorded(inventory)])
    with session, pytest.raises(LabctlError) as raised:
        session.wait_established(60.0, interval=0.01)
    assert str(raised.value).startswith(
        "cannot prove the BGP fabric up: session fohn - astrid (31.31.164.211) was read "
        "from neither end"
    )


def test_the_real_lab_wait_names_each_session_down_and_its_state(inventory: Inventory) -> None:
    kek_only = dataclasses.replace(
        inventory,
        cluster=dataclasses.replace(
            inventory.cluster,
            calico=dataclasses.replace(
                inventory.cluster.calico,
                peers=tuple(p for p in inventory.cluster.calico.peers if p.switch == "kek-core"),
            ),
        ),
    )
    session = _Recorded(kek_only, [_recorded(kek_only)])
    with session, pytest.raises(LabctlError) as raised:
        session.wait_established(0.05, interval=0.01)
    said = str(raised.value)
    assert said.startswith("the BGP fabric is not up after 0.05 s: ")
    assert "session chequita - kek-core (31.31.164.210) is down: kek-core says Connect" in said
    assert "session wind - kek-core (31.31.164.210) is down: kek-core says Connect" in said
    assert "fohn - kek-core" not in said  # Established, as kek-core says


def test_a_node_not_ready_is_named_with_its_kubelets_words(inventory: Inventory) -> None:
    """On main the failure said only the names: not which state they were in."""
    nodes = [
        NodeState("fohn", True, "", "v1.31.1", "31.31.164.220"),
        NodeState(
            "chequita",
            False,
            "container runtime network not ready: NetworkReady=false "
            "reason:NetworkPluginNotReady message:Network plugin returns error: "
            "cni plugin not initialized",
            "v1.31.1",
            "31.31.164.221",
        ),
    ]
    assert not_ready_reasons(inventory, nodes) == [
        "chequita (container runtime network not ready: NetworkReady=false "
        "reason:NetworkPluginNotReady message:Network plugin returns error: "
        "cni plugin not initialized)",
        "wind (not registered)",
    ]
