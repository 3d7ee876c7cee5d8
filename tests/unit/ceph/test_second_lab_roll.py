"""The second lab's Ceph roll reaches its metadata servers (issue 24's last gaps).

The second lab (``tests/fixtures/second-lab.yaml``) is where a Ceph roll runs end to
end (``tests/e2e/test_second_lab.py``'s ``roll()``); it has one CephFS so that the
roll has MDSs to restart, last. This is the plan its e2e test reads with ``labctl
plan`` before the run moves anything: the same count and order, without a lab.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import FIXTURES
from tests.unit.ceph.test_rolling_restart import NEW, restarts


def test_the_second_labs_image_change_restarts_its_two_mds_last(tmp_path: Path) -> None:
    text = (FIXTURES / "second-lab.yaml").read_text()
    field = "    public_network: public\n"
    after = restarts(text.replace(field, f"{field}    image: {NEW}\n", 1), tmp_path)
    kinds = [
        kind
        for _, _, action, _ in after
        for kind in ("mon", "mgr", "osd", "mds")
        if f"restart ceph-{kind}-" in action.what
    ]
    # What roll() requires of `labctl plan` (one step per OSD host: one OSD each).
    assert kinds == ["mon"] * 3 + ["mgr"] * 2 + ["osd"] * 4 + ["mds"] * 2, kinds
    assert [node for plan, node, _, _ in after if plan == "ceph: metadata servers"] == [
        "ada",
        "dot",
    ]
