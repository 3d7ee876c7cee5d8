"""The second lab's inventory (tests/fixtures/second-lab.yaml, its e2e test's) validates
clean and is what issue 23 asks of it: Fedora CoreOS (podman), an APC rPDU2 PDU, one
FRR switch the nodes peer with, etcd and Ceph in containers, and four OSD hosts, so
pools of size 3 keep their copies when one server is reset."""

from __future__ import annotations

from labctl.inventory import load_inventory
from labctl.render import ceph as render_ceph
from labctl.render import etcd as render_etcd
from tests.conftest import FIXTURES


def test_the_second_lab_validates_clean_and_can_lose_one_ceph_host() -> None:
    result = load_inventory(FIXTURES / "second-lab.yaml", simulated=True)
    assert [f"{p.check_id} {p.message}" for p in result.problems] == []
    inventory = result.inventory
    assert inventory is not None
    assert {s.os.distribution for s in inventory.servers} == {"fedora-coreos"}
    assert [p.profile for p in inventory.pdus] == ["apc-rpdu2"]
    assert [s.platform for s in inventory.switches] == ["frr"]
    assert render_etcd.runtime(inventory) == "container"
    assert render_ceph.runtime(inventory) == "container"
    hosts = {osd.server for osd in render_ceph.osds(inventory)}
    ceph = inventory.cluster.ceph
    assert ceph is not None
    assert len(hosts) == 4 and all(pool.size == 3 for pool in ceph.pools)
    assert len(render_ceph.mons(inventory)) == 3
