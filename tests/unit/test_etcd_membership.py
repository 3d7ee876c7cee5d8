"""Member changes decided from live members: who joins, who leaves, what keeps quorum."""

from __future__ import annotations

from pathlib import Path

from labctl.drivers.etcd import Member
from labctl.etcd.membership import (
    MembershipRecord,
    changes,
    promote_refusal,
    remove_refusal,
)
from labctl.inventory import require_inventory
from tests.conftest import REFERENCE


def member(i: int, name: str, learner: bool = False) -> Member:
    return Member(i, name, (f"https://31.31.164.{219 + i}:2380",), (), learner)


FOHN, CHEQUITA, WIND = member(1, "fohn"), member(2, "chequita"), member(3, "wind")


def test_an_unstarted_learner_is_still_joining_and_found_by_its_peer_url() -> None:
    inventory = require_inventory(REFERENCE)
    assert changes(inventory, [FOHN, CHEQUITA, WIND]).describe() is None
    learner = member(3, "", learner=True)
    found = changes(inventory, [FOHN, CHEQUITA, learner])
    assert found.joining == ("wind",) and found.leaving == ()
    stray = Member(9, "old", ("https://10.0.0.9:2380",), (), False)
    found = changes(inventory, [FOHN, CHEQUITA, stray])
    assert found.joining == ("wind",) and found.leaving == ("old",)
    assert found.describe() == ("add wind (as learners, promoted once caught up); remove old")


def test_promotion_needs_quorum_of_the_larger_cluster() -> None:
    learner = member(4, "new", learner=True)
    live = [FOHN, CHEQUITA, WIND, learner]
    assert promote_refusal(live, {1, 2, 3}, learner) is None  # 3 of 4
    refusal = promote_refusal(live, {1, 2}, learner)
    assert refusal == "promoting new makes 4 voting members, which need 3 healthy; only 2 are"


def test_removal_keeps_quorum_of_the_smaller_cluster_and_names_the_sick() -> None:
    live = [FOHN, CHEQUITA, WIND]
    assert remove_refusal(live, {1, 2, 3}, WIND) is None
    assert remove_refusal(live, {1, 2}, WIND) is None  # the leaver was the sick one
    refusal = remove_refusal(live, {1, 3}, WIND)
    assert refusal == (
        "after removing wind, 2 voting members need 2 healthy and only 1 are "
        "(not healthy: chequita)"
    )
    assert remove_refusal([FOHN], {1}, FOHN) == "fohn is the cluster's last voting member"
    assert remove_refusal([FOHN, member(5, "l", True)], set(), member(5, "l", True)) is None


def test_the_record_round_trips_through_an_atomic_file(tmp_path: Path) -> None:
    record = MembershipRecord.load(tmp_path)
    assert record.joining == [] and record.joined == {}
    record.joining = ["wind"]
    record.leaving = {"old": "9"}
    record.joined["wind"] = ("fohn=https://a:2380,wind=https://b:2380", "beef")
    record.save()
    again = MembershipRecord.load(tmp_path)
    assert (again.joining, again.leaving, again.joined) == (
        ["wind"],
        {"old": "9"},
        {"wind": ("fohn=https://a:2380,wind=https://b:2380", "beef")},
    )
    assert [p.name for p in tmp_path.iterdir()] == ["etcd-membership.json"]
