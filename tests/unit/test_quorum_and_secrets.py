"""The quorum guard and secret resolution (pure, no peers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.errors import SecretError
from labctl.inventory import load_inventory
from labctl.inventory.model import Inventory, SecretRef
from labctl.power.quorum import quorum_refusals
from labctl.secrets.references import resolve
from tests.conftest import REFERENCE


@pytest.fixture(scope="module")
def inv() -> Inventory:
    inventory = load_inventory(REFERENCE).inventory
    assert inventory is not None
    return inventory


ALL_UP = {"fohn": True, "chequita": True, "wind": True}


def test_one_member_down_is_fine(inv: Inventory) -> None:
    assert quorum_refusals(inv, ALL_UP, ["fohn"]) == []


def test_second_member_down_is_refused(inv: Inventory) -> None:
    refusals = quorum_refusals(inv, {**ALL_UP, "wind": False}, ["fohn"])
    assert len(refusals) == 2  # etcd and the Ceph monitors
    assert refusals[0] == (
        "etcd: 2 of 3 members must stay up for quorum; wind is already down or unknown; "
        "taking down fohn would leave 1"
    )


def test_unknown_state_counts_as_down(inv: Inventory) -> None:
    assert quorum_refusals(inv, {**ALL_UP, "chequita": None}, ["wind"]) != []


def test_two_at_once_is_refused(inv: Inventory) -> None:
    assert quorum_refusals(inv, ALL_UP, ["fohn", "wind"]) != []


def test_quorum_already_lost_needs_force(inv: Inventory) -> None:
    # Quorum is already gone; acting on a member (even a dead one) needs --force,
    # so an operator sees the lost majority before touching the cluster further.
    states = {"fohn": False, "chequita": False, "wind": True}
    assert quorum_refusals(inv, states, ["fohn"]) != []


def test_secret_from_env_and_file(tmp_path: Path) -> None:
    assert resolve(SecretRef(env="X"), used_at="a", base_dir=tmp_path, environ={"X": "s3"}) == "s3"
    (tmp_path / "pw").write_text("from-file\n")
    assert resolve(SecretRef(file="pw"), used_at="a", base_dir=tmp_path) == "from-file"


@pytest.mark.parametrize(
    ("ref", "environ", "words"),
    [
        (SecretRef(env="NOPE"), {}, "environment variable NOPE is not set"),
        (SecretRef(env="E"), {"E": ""}, "environment variable E is empty"),
        (SecretRef(file="missing"), {}, "does not exist"),
    ],
)
def test_secret_errors_name_the_reference(
    ref: SecretRef, environ: dict[str, str], words: str, tmp_path: Path
) -> None:
    with pytest.raises(SecretError) as caught:
        resolve(ref, used_at="servers[0].bmc.password", base_dir=tmp_path, environ=environ)
    assert words in str(caught.value)
    assert str(caught.value).startswith("servers[0].bmc.password:")


def test_a_powered_member_its_service_calls_unhealthy_counts_as_down(inv: Inventory) -> None:
    unwell = {"etcd": {"wind": "no answer within 2 s"}}
    refusals = quorum_refusals(inv, ALL_UP, ["fohn"], unwell)
    assert refusals == [
        "etcd: 2 of 3 members must stay up for quorum; wind is on but its etcd member is "
        "unhealthy (no answer within 2 s); taking down fohn would leave 1"
    ]  # the Ceph monitors go by power alone: all three are on
    assert quorum_refusals(inv, ALL_UP, ["wind"], unwell) == []  # taking the sick one is fine
