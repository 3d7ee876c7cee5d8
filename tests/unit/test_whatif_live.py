"""`labctl whatif --live`'s folding: what the lab says is already down counts (pure).

The reference inventory's wiring is in tests/unit/test_whatif.py's paragraph: etcd
and Ceph monitors on fohn, chequita and wind (2 of 3 needed); each node has a mesh
session with the two others and one with each of kek-core and astrid.
"""

from __future__ import annotations

import pytest

from labctl.inventory import require_inventory
from labctl.inventory.failure import LiveFacts, Prediction, parse, predict, refine
from tests.conftest import REFERENCE


@pytest.fixture(scope="module")
def inv():  # type: ignore[no-untyped-def]
    return require_inventory(REFERENCE)


def _refined(inv, live: LiveFacts, *names: str) -> Prediction:  # type: ignore[no-untyped-def]
    return refine(inv, predict(inv, parse(inv, list(names))), live)


def test_an_etcd_member_already_down_makes_one_more_server_cost_the_quorum(inv) -> None:  # type: ignore[no-untyped-def]
    assert predict(inv, parse(inv, ["fohn"])).etcd.kept  # from the inventory: 2 of 3 left
    p = _refined(inv, LiveFacts(etcd_down=("wind",)), "fohn")
    assert p.etcd.left == ("chequita",) and not p.etcd.kept
    assert "etcd quorum lost: 1 of 3 members left, 2 needed" in p.breaks()
    assert p.live is not None and p.as_dict()["live"]["etcd_down"] == ("wind",)


def test_a_server_already_off_is_down_with_its_roles_sessions_and_block(inv) -> None:  # type: ignore[no-untyped-def]
    p = _refined(inv, LiveFacts(powered_off=("wind",)), "pdu1")
    assert {d.name: d.why for d in p.down} == {
        "chequita": "no power: pdu1:3",
        "wind": "already powered off (live)",
    }
    assert [f.name for f in p.failed] == ["pdu1"]  # what the operator asked stays as asked
    assert p.etcd.left == ("fohn",) and not p.etcd.kept
    assert p.ceph_monitors is not None and not p.ceph_monitors.kept
    assert {b.node for b in p.blocks} == {"chequita", "wind"}
    # chequita's 4 sessions and wind's 4, their shared mesh session once: 7.
    assert len(p.sessions) == 7
    assert {pool.after for pool in p.pools} == {"inactive"}  # 1 OSD host for min_size 2


def test_sessions_already_down_count_and_a_node_left_with_none_loses_its_block(inv) -> None:  # type: ignore[no-untyped-def]
    # fohn loses one supply only: from the inventory nothing breaks.
    assert predict(inv, parse(inv, ["pdu1:1"])).breaks() == []
    down = (("fohn", "chequita"), ("fohn", "wind"), ("fohn", "kek-core"), ("fohn", "astrid"))
    p = _refined(inv, LiveFacts(sessions_down=down[:3]), "pdu1:1")
    assert {(s.a, s.b, s.kind) for s in p.sessions} == {
        ("chequita", "fohn", "mesh"),
        ("fohn", "wind", "mesh"),
        ("fohn", "kek-core", "switch"),
    }
    assert all(s.why == "already down (not Established now)" for s in p.sessions)
    assert p.blocks == ()  # fohn still has astrid
    p = _refined(inv, LiveFacts(sessions_down=down), "pdu1:1")
    assert [(b.node, b.why) for b in p.blocks] == [("fohn", "fohn has no BGP session left")]


def test_a_monitor_outside_the_quorum_counts(inv) -> None:  # type: ignore[no-untyped-def]
    p = _refined(inv, LiveFacts(mons_out=("chequita",)), "wind")
    assert p.ceph_monitors is not None and p.ceph_monitors.left == ("fohn",)
    assert "Ceph monitors quorum lost: 1 of 3 members left, 2 needed" in p.breaks()
    assert p.etcd.kept  # etcd was read healthy (None: not asked) and keeps 2 of 3


def test_nothing_already_down_changes_nothing_but_says_it_was_read(inv) -> None:  # type: ignore[no-untyped-def]
    plain = predict(inv, parse(inv, ["pdu2"]))
    p = refine(inv, plain, LiveFacts((), (), (), (), ("BGP: astrid did not answer: x",)))
    assert p.breaks() == plain.breaks() and p.sessions == plain.sessions
    assert p.notes[-1] == "BGP: astrid did not answer: x"
    assert p.live is not None and p.live.sentences() == []
