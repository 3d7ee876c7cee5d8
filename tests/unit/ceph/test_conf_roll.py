"""A ceph.conf change alone restarts every Ceph daemon, in the order an image change does.

The e2e roll (``tests/e2e/test_second_lab.py``'s image change) carries a ceph.conf
change in the same edit, so every daemon there restarts for its image first. What a
conf-only change takes is proven here instead (the ceph lab's own ceph.conf roll was
folded into that test, issue 28's "the suite in half an hour"): the plans' restart
steps are triggered by ceph.conf's digest too (``render.DaemonFiles.digest``), with
the same scripts, units and order as an image change; and each restart script, on a
node whose daemon already runs the unit's image, restarts it when ceph.conf changed
after it started (``ceph-current.sh``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.ceph.keys import CephKeys
from labctl.engine.actions import PutFile
from labctl.engine.facts import Facts
from labctl.engine.layer import LayerContext
from labctl.inventory import require_inventory
from labctl.layers.ceph import MON_RESTART, RESTART, CephLayer
from labctl.render import ceph as render
from tests.conftest import FIXTURES, REFERENCE
from tests.unit.ceph import test_rolling_restart as rolling
from tests.unit.ceph.test_rolling_restart import NEW, mon_args, restarts, run, runs

# The option the e2e roll adds (ceph.config, written under [global]).
OPTION = "      osd_max_backfills: 2\n"
# Where each lab's inventory takes one more ceph.config option.
WHERE = {
    REFERENCE: ("    version: 16.2.15", f"    config:\n{OPTION}    version: 16.2.15"),
    FIXTURES / "second-lab.yaml": (
        "      mon_osd_down_out_interval: 3600\n",
        f"      mon_osd_down_out_interval: 3600\n{OPTION}",
    ),
}

node = rolling.node  # the stand-ins' fixture: a folder standing for a node


def conf_files(text: str, tmp_path: Path) -> dict[str, bytes]:
    """Each node's ceph.conf as the plans write it."""
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    inventory = require_inventory(path)
    keys = CephKeys(tuple((e, "k") for e in render.entities(inventory)))
    ctx = LayerContext(inventory, path, tmp_path / "state", facts=Facts.of(keys))
    return {
        step.action.host: step.action.content
        for plan in CephLayer().plans(ctx)
        for step in plan.steps
        if isinstance(step.action, PutFile) and step.action.path.endswith(render.CONF_PATH)
    }


@pytest.mark.parametrize("lab", list(WHERE))
def test_a_conf_change_alone_restarts_every_daemon_in_the_image_changes_order(
    lab: Path, tmp_path: Path
) -> None:
    text = lab.read_text()
    old, new = WHERE[lab]
    assert text.count(old) == 1, old
    changed = text.replace(old, new)
    before, after = restarts(text, tmp_path), restarts(changed, tmp_path)
    # The same steps, scripts and units (the image is unchanged) ...
    assert [(p, n, a.argv, w) for p, n, a, w in after] == [
        (p, n, a.argv, w) for p, n, a, w in before
    ]
    # ... every one triggered again, by ceph.conf alone.
    for (_, _, old_step, _), (_, _, new_step, _) in zip(before, after, strict=True):
        assert old_step.triggers != new_step.triggers
    # The order and waits are the image change's (test_rolling_restart): one monitor
    # at a time back in quorum, then managers, then OSD hosts each waiting for every PG.
    plans = [p for p, *_ in after]
    assert plans == sorted(plans, key=["ceph: monitors", "ceph: managers", "ceph: osds",
                                       "ceph: metadata servers"].index)  # fmt: skip
    for plan, _, step, _ in after:
        if plan == "ceph: monitors":
            assert "back in quorum" in step.what
        if plan == "ceph: osds":
            assert "every PG is active+clean" in step.what
    # Every node's ceph.conf holds the option, and nothing else of it changed.
    old_conf, new_conf = conf_files(text, tmp_path), conf_files(changed, tmp_path)
    assert set(new_conf) == set(old_conf) and new_conf
    for host, content in new_conf.items():
        assert b"osd_max_backfills = 2\n" in content, content
        assert content.replace(b"osd_max_backfills = 2\n", b"") == old_conf[host]


def _conf_changed_now(node: Path) -> None:
    """ceph.conf written now: after the stand-in daemon started (it was 100 s old)."""
    (node / "units" / "ceph.conf").write_text("changed")


def test_a_monitor_on_the_image_restarts_when_ceph_conf_changed_since_it_started(
    node: Path,
) -> None:
    args = mon_args(node)
    runs(node, "ceph-mon-ada", NEW)
    done, calls = run(node, MON_RESTART, *args)
    assert done.returncode == 0 and not [c for c in calls if "systemctl" in c], calls
    _conf_changed_now(node)
    done, calls = run(node, MON_RESTART, *args)
    assert done.returncode == 0, done.stderr
    assert "systemctl restart ceph-mon-ada.service" in calls, calls


def test_a_manager_on_the_image_restarts_when_ceph_conf_changed_since_it_started(
    node: Path,
) -> None:
    units = node / "units"
    args = (str(node / "bin" / "engine"), NEW, str(units), str(units / "ceph.conf"),
            "ceph-mgr-ada.service")  # fmt: skip
    runs(node, "ceph-mgr-ada", NEW)
    done, calls = run(node, RESTART, *args)
    assert done.returncode == 0 and not [c for c in calls if "systemctl" in c], calls
    _conf_changed_now(node)
    done, calls = run(node, RESTART, *args)
    assert done.returncode == 0, done.stderr
    assert calls == ["systemctl restart ceph-mgr-ada.service"], calls
