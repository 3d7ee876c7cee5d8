"""`labctl whatif`: predictions on the reference inventory, worked out by hand.

The wiring read from inventory.yaml, which every expectation below follows:
  pdu1: 1 fohn psu1, 2 wind psu1, 3 chequita psu1, 4 kek-core psu1, 5 astrid psu1
  pdu2: 1 fohn psu2, 2 wind psu2, 3 tor psu1,      4 kek-core psu2, 5 astrid psu2
  so chequita and tor have ONE feed each (chequita on pdu1, tor on pdu2).
  NICs: every server's eno1 (public 31.31.164.22x) on tor; storage NICs: fohn
  ens1f0 on kek-core xe1, chequita ens2f0 on astrid Ethernet1, wind on astrid Ethernet2.
  Roles: etcd and ceph-mon on all three (need 2 of 3); ceph-osd on all three (each
  has osd disks); control-plane fohn only, API endpoint 31.31.164.220 (fohn's eno1).
  Pools rbd, cephfs_data, cephfs_metadata: size 3, so min_size 2, failure domain host.
  Calico: iBGP full mesh on public (3 pairs) and every node peers kek-core and astrid
  (6 switch sessions); blocks /26 in inventory order: fohn .0, chequita .64, wind .128.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from labctl.cli.main import build_app
from labctl.errors import UsageError
from labctl.inventory import require_inventory
from labctl.inventory.failure import Prediction, parse, predict
from tests.conftest import REFERENCE


@pytest.fixture(scope="module")
def inv():  # type: ignore[no-untyped-def]
    return require_inventory(REFERENCE)


def _predict(inv, *names: str) -> Prediction:  # type: ignore[no-untyped-def]
    return predict(inv, parse(inv, list(names)))


def _down(p: Prediction) -> dict[str, str]:
    return {d.name: d.why for d in p.down}


def _pools(p: Prediction) -> set[str]:
    return {pool.after for pool in p.pools}


def test_pdu1_alone_takes_only_chequita_whose_one_supply_it_feeds(inv) -> None:  # type: ignore[no-untyped-def]
    # fohn, wind, kek-core, astrid have a second supply on pdu2; chequita has only
    # pdu1:3. tor is on pdu2 alone, so it stays. A wrong model that downs every device
    # with an outlet on pdu1 would down five devices here.
    p = _predict(inv, "pdu1")
    assert _down(p) == {"chequita": "no power: pdu1:3"}
    # etcd and monitors: 2 of 3 left, 2 needed: kept.
    assert p.etcd.kept and p.etcd.left == ("fohn", "wind")
    assert p.ceph_monitors is not None and p.ceph_monitors.kept
    # 2 OSD hosts left for size 3, min_size 2: degraded, not inactive.
    assert _pools(p) == {"degraded"}
    assert p.control_plane.kept
    # chequita's 4 sessions, the mesh counted once per pair: fohn, wind, kek-core, astrid.
    assert {(s.a, s.b) for s in p.sessions} == {
        ("chequita", "fohn"),
        ("chequita", "wind"),
        ("chequita", "kek-core"),
        ("chequita", "astrid"),
    }
    assert [(b.block, b.node) for b in p.blocks] == [("10.188.0.64/26", "chequita")]
    assert {(d.switch, d.port) for d in p.dark_ports} == {
        ("tor", "Gi1/0/2"),
        ("astrid", "Ethernet1"),
    }


def test_pdu1_and_pdu2_take_everything(inv) -> None:  # type: ignore[no-untyped-def]
    p = _predict(inv, "pdu1", "pdu2")
    assert set(_down(p)) == {"fohn", "chequita", "wind", "kek-core", "astrid", "tor"}
    assert not p.etcd.kept and p.etcd.left == ()
    assert p.ceph_monitors is not None and not p.ceph_monitors.kept
    assert _pools(p) == {"inactive"}
    assert not p.control_plane.kept
    assert len(p.sessions) == 9  # 3 mesh pairs + 6 switch sessions
    assert len(p.blocks) == 3


def test_pdu2_alone_darkens_tor_and_with_it_every_public_address(inv) -> None:  # type: ignore[no-untyped-def]
    # No server loses power (fohn, wind have pdu1 supplies; chequita is on pdu1), but
    # tor has only pdu2:3: every eno1 (the public network: etcd, monitors, BGP, the API
    # endpoint) goes dark. The storage NICs live on, so no server is "down": a model that
    # only counts powered-off or fully isolated servers would say nothing breaks.
    p = _predict(inv, "pdu2")
    assert _down(p) == {"tor": "no power: pdu2:3"}
    assert not p.etcd.kept and p.etcd.left == ()
    assert p.ceph_monitors is not None and not p.ceph_monitors.kept
    assert _pools(p) == {"inactive"}  # OSDs need the public network too
    assert not p.control_plane.kept and not p.control_plane.endpoint_up
    assert len(p.sessions) == 9
    assert {b.why for b in p.blocks} == {
        "fohn has no BGP session left",
        "chequita has no BGP session left",
        "wind has no BGP session left",
    }


def test_kek_core_costs_its_bgp_sessions_and_fohns_storage_link(inv) -> None:  # type: ignore[no-untyped-def]
    # kek-core carries fohn's storage NIC (xe1): fohn keeps power and its public
    # network (etcd, monitor, control plane stay) but its OSDs lose the cluster network,
    # so 2 OSD hosts remain: degraded. Each node keeps its astrid session: no block lost.
    p = _predict(inv, "kek-core")
    assert _down(p) == {"kek-core": "failed"}
    assert p.etcd.kept and len(p.etcd.left) == 3
    assert p.ceph_monitors is not None and len(p.ceph_monitors.left) == 3
    assert [(x.hosts_after, x.after) for x in p.pools] == [(2, "degraded")] * 3
    assert p.control_plane.kept
    assert {(s.a, s.b, s.kind) for s in p.sessions} == {
        ("fohn", "kek-core", "switch"),
        ("chequita", "kek-core", "switch"),
        ("wind", "kek-core", "switch"),
    }
    assert p.blocks == ()


def test_fohn_alone_takes_the_only_control_plane(inv) -> None:  # type: ignore[no-untyped-def]
    p = _predict(inv, "fohn")
    assert _down(p) == {"fohn": "failed"}
    assert p.etcd.kept  # 2 of 3
    assert _pools(p) == {"degraded"}  # a pool of size 3 on 2 surviving hosts
    assert not p.control_plane.kept and p.control_plane.left == ()
    assert p.control_plane.endpoint_holder == "fohn"


def test_fohn_and_chequita_lose_etcd_quorum(inv) -> None:  # type: ignore[no-untyped-def]
    # 1 of 3 etcd members (wind) left, 2 needed; 1 OSD host < min_size 2: inactive.
    p = _predict(inv, "fohn", "chequita")
    assert not p.etcd.kept and p.etcd.left == ("wind",) and p.etcd.needed == 2
    assert p.ceph_monitors is not None and not p.ceph_monitors.kept
    assert [(x.hosts_after, x.after) for x in p.pools] == [(1, "inactive")] * 3


def test_one_supply_of_a_dual_fed_server_breaks_nothing(inv) -> None:  # type: ignore[no-untyped-def]
    # pdu1:1 is fohn's psu1; psu2 on pdu2:1 keeps it up. pdu1:8 feeds nothing.
    assert _predict(inv, "pdu1:1").breaks() == []
    assert _predict(inv, "pdu1:8").breaks() == []
    # Both of fohn's outlets: fohn has no power.
    assert _down(_predict(inv, "pdu1:1", "pdu2:1")) == {"fohn": "no power: pdu1:1, pdu2:1"}


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["fhon"], "did you mean fohn"),
        (["pdu3"], "did you mean pdu2 or pdu1"),
        (["fohn", "fohn"], "fohn is given twice"),
        (["pdu1:03", "pdu1:3"], "given twice"),
        (["pdu1", "pdu1:3"], "pdu1:3 is part of --fail pdu1"),
        (["pdu1:9"], "pdu1 has outlets 1 to 8"),
    ],
)
def test_bad_devices_are_a_sentence(inv, args: list[str], said: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match=said):
        parse(inv, args)


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(build_app(), ["whatif", "-i", str(REFERENCE), *args])


def test_command_exit_codes() -> None:
    assert _run("--fail", "pdu1:1").exit_code == 0
    assert _run("--fail", "fohn").exit_code == 1
    # Bad input through the console script's own error handling: a sentence, exit 2.
    bad = subprocess.run(
        [sys.executable, "-m", "labctl", "whatif", "-i", str(REFERENCE), "--fail", "fhon"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "did you mean fohn" in bad.stderr and "Traceback" not in bad.stderr


def test_json_shape() -> None:
    result = _run("--fail", "fohn", "--fail", "chequita", "-o", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert [f["name"] for f in data["failed"]] == ["fohn", "chequita"]
    assert data["etcd"] == {
        "name": "etcd",
        "members": ["fohn", "chequita", "wind"],
        "left": ["wind"],
        "needed": 2,
        "kept": False,
    }
    assert data["pools"][0] == {
        "name": "rbd",
        "size": 3,
        "min_size": 2,
        "hosts_before": 3,
        "hosts_after": 1,
        "before": "ok",
        "after": "inactive",
    }
    assert data["control_plane"]["kept"] is False
    assert any("etcd quorum lost" in b for b in data["breaks"])
    assert {"down", "dark_ports", "sessions", "blocks", "ceph_monitors", "notes"} <= set(data)


def test_a_pool_of_size_two_rides_out_what_breaks_size_three(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # rbd made size 2 (min_size 2 - 2//2 = 1); the other pools stay size 3 (min_size 2).
    # fohn down leaves 2 OSD hosts: rbd ok (2 >= size 2), the others degraded.
    # fohn and chequita down leave 1: rbd degraded (1 >= min_size 1), the others inactive.
    # An implementation with min_size or size fixed at 2/3 fails one of these.
    text = REFERENCE.read_text().replace(
        "{name: rbd, application: rbd, size: 3,", "{name: rbd, application: rbd, size: 2,"
    )
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    two = require_inventory(path)
    one = _predict(two, "fohn")
    assert [(x.name, x.min_size, x.after) for x in one.pools] == [
        ("rbd", 1, "ok"),
        ("cephfs_data", 2, "degraded"),
        ("cephfs_metadata", 2, "degraded"),
    ]
    assert not any("pool rbd" in b for b in one.breaks())
    both = _predict(two, "fohn", "chequita")
    assert [x.after for x in both.pools] == ["degraded", "inactive", "inactive"]
