"""The Ceph roll (issue 24 item 2): its order in the plans, and its scripts' guards.

An image or version change rewrites every daemon's unit, so every daemon restarts, in
Ceph's order: monitors one by one, then managers, then OSDs host by host, then the
metadata servers, each step after the one before. The OSD step asks ``ceph osd
ok-to-stop`` first, sets ``noout`` for the restart and unsets it, waits for
active+clean; a daemon whose container already runs the unit's image since the unit
last changed is not restarted again (an interrupted roll resumes). The scripts run
here under sh with stand-ins for ceph, systemctl and the container engine that log
every call, and a real process standing for a running daemon's container.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.ceph.keys import CephKeys
from labctl.engine.actions import Run
from labctl.engine.facts import Facts
from labctl.engine.layer import LayerContext
from labctl.inventory import require_inventory
from labctl.layers.ceph import MON_RESTART, OSD_RESTART, CephLayer, is_restart
from labctl.render import ceph as render
from tests.conftest import FIXTURES, REFERENCE

OLD = "quay.io/ceph/ceph:v16.2.15"
NEW = "registry.lab.example/ceph/ceph:v16.2.15"


def restarts(text: str, tmp_path: Path) -> list[tuple[str, str, Run, tuple[str, ...]]]:
    """(plan, node, action, after) of every restart step, in plan order."""
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    inventory = require_inventory(path)
    keys = CephKeys(tuple((e, "k") for e in render.entities(inventory)))
    ctx = LayerContext(inventory, path, tmp_path / "state", facts=Facts.of(keys))
    found = []
    for plan in CephLayer().plans(ctx):
        for step in plan.steps:
            if is_restart(step.action):
                assert isinstance(step.action, Run)
                found.append((plan.layer, step.target, step.action, step.after))
    return found


@pytest.mark.parametrize("lab", [REFERENCE, FIXTURES / "second-lab.yaml"])
def test_an_image_change_restarts_every_daemon_in_cephs_order(lab: Path, tmp_path: Path) -> None:
    text = lab.read_text()
    before = restarts(text, tmp_path)
    field = "    public_network: public\n"
    changed = text.replace(field, f"{field}    image: {NEW}\n", 1)
    after = restarts(changed, tmp_path)
    assert len(after) == len(before)
    # Every restart step's trigger changed (the unit names the new image) ...
    for (_, _, old, _), (_, _, new, _) in zip(before, after, strict=True):
        assert old.triggers != new.triggers
        assert NEW in new.argv and OLD not in new.argv
    # ... in Ceph's order, plan by plan: monitors, managers, OSDs, metadata servers.
    order = [plan for plan, *_ in after]
    assert order == sorted(order, key=["ceph: monitors", "ceph: managers", "ceph: osds",
                                       "ceph: metadata servers"].index)  # fmt: skip
    assert order.count("ceph: monitors") == len(render.mons(require_inventory(lab)))
    # One step per host for the OSDs (never two hosts' OSDs down), each after the last.
    osd_nodes = [node for plan, node, _, _ in after if plan == "ceph: osds"]
    assert len(osd_nodes) == len(set(osd_nodes))
    for plan in set(order):
        steps = [(action.key, after_) for p, _, action, after_ in after if p == plan]
        for (previous, _), (_, waits_for) in itertools.pairwise(steps):
            assert waits_for == (previous,)
    osd_step = next(action for plan, _, action, _ in after if plan == "ceph: osds")
    assert "ok-to-stop" in osd_step.what and "noout" in osd_step.what


# The stand-ins: each logs "NAME ARGS" to calls; ceph answers from files in the folder.
CEPH = """#!/bin/sh
echo "ceph $*" >> {d}/calls
case "$*" in
  *"daemon osd."*) echo '{{"state": "active"}}' ;;
  *"daemon mon."*) echo '{{"state": "peon"}}' ;;
  *"osd ok-to-stop"*)
    n=$(cat {d}/busy 2>/dev/null || echo 0)
    if [ "$n" -gt 0 ]; then echo $((n - 1)) > {d}/busy
      echo "unsafe to stop osd(s) at this time (4 PGs are or would become offline)" >&2; exit 16
    fi ;;
  *"pg stat"*) echo '{{"num_pg_by_state": [{{"name": "active+clean", "num": 32}}]}}' ;;
esac
"""
# systemctl: every unit active (these nodes' daemons run), asked without a log line.
SYSTEMCTL = """#!/bin/sh
case "$1" in is-active) shift; for u; do echo active; done; exit 0 ;; esac
echo "systemctl $*" >> {d}/calls
"""
ENGINE = """#!/bin/sh
c=$4
case "$3" in
  *Image*) cat {d}/image-$c 2>/dev/null ;;
  *Pid*) cat {d}/pid-$c 2>/dev/null || echo 0 ;;
esac
"""


def stand_in_node(
    folder: Path, ceph: str, systemctl: str, engine: str, units: tuple[str, ...]
) -> Path:
    """``folder`` standing for a node: the stand-ins ``ceph``, ``systemctl`` and
    ``engine`` (texts, ``{d}`` the folder) in its bin/, and ``units`` with ceph.conf in
    its units/, which it returns."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    for name, text in (("ceph", ceph), ("systemctl", systemctl), ("engine", engine)):
        (bin_dir / name).write_text(text.format(d=folder))
        (bin_dir / name).chmod(0o755)
    unit_dir = folder / "units"
    unit_dir.mkdir()
    for name in (*units, "ceph.conf"):
        (unit_dir / name).write_text("x")
    return unit_dir


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Path]:
    """A folder standing for a node: stand-ins on PATH, units and ceph.conf written
    100 s ago, and one real process per container the test says runs."""
    units = stand_in_node(tmp_path, CEPH, SYSTEMCTL, ENGINE,
                          ("ceph-osd-0.service", "ceph-osd-1.service", "ceph-mon-ada.service",
                           "ceph-mgr-ada.service"))  # fmt: skip
    old = time.time() - 100
    for path in units.iterdir():
        os.utime(path, (old, old))
    sleeper = subprocess.Popen(["sleep", "60"])
    (tmp_path / "sleeper").write_text(str(sleeper.pid))
    try:
        yield tmp_path
    finally:
        sleeper.kill()
        sleeper.wait()


def runs(node: Path, container: str, image: str) -> None:
    """``container`` is running ``image`` (started now, after its unit last changed)."""
    (node / f"image-{container}").write_text(image + "\n")
    (node / f"pid-{container}").write_text((node / "sleeper").read_text() + "\n")


def run(node: Path, body: str, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    env = {**os.environ, "PATH": f"{node / 'bin'}:{os.environ['PATH']}"}
    done = subprocess.run(["sh", "-c", body, "test", *args], capture_output=True, text=True,
                          env=env, timeout=60)  # fmt: skip
    log = node / "calls"
    return done, log.read_text().splitlines() if log.exists() else []


def osd_args(node: Path) -> tuple[str, ...]:
    units = node / "units"
    return ("ceph", "30", str(node / "bin" / "engine"), NEW, str(units),
            str(units / "ceph.conf"), str(node / "mark" / "noout"),
            "ceph-osd-0.service:0", "ceph-osd-1.service:1")  # fmt: skip


def mon_args(node: Path) -> tuple[str, ...]:
    """ceph-mon-restart.sh's arguments for ada's monitor, its unit on image NEW."""
    units = node / "units"
    return ("ceph", "ada", "ceph-mon-ada.service", "30", str(node / "bin" / "engine"), NEW,
            str(units), str(units / "ceph.conf"))  # fmt: skip


def test_a_hosts_osds_restart_after_ok_to_stop_under_noout_then_wait_for_clean(
    node: Path,
) -> None:
    (node / "busy").write_text("2")  # Ceph says no twice: the script waits, then goes
    runs(node, "ceph-osd-0", OLD)
    done, calls = run(node, OSD_RESTART, *osd_args(node))
    assert done.returncode == 0, done.stderr
    asked = [c for c in calls if "daemon" not in c]
    assert asked == [
        "ceph --connect-timeout 5 osd ok-to-stop 0 1",
        "ceph --connect-timeout 5 osd ok-to-stop 0 1",
        "ceph --connect-timeout 5 osd ok-to-stop 0 1",
        "ceph --connect-timeout 5 osd set noout",
        "systemctl restart ceph-osd-0.service",
        "systemctl restart ceph-osd-1.service",
        "ceph --connect-timeout 5 osd unset noout",
        "ceph --connect-timeout 5 pg stat -f json",
    ]
    assert not (node / "mark" / "noout").exists()


def test_an_interrupted_roll_restarts_only_the_osds_not_yet_on_the_image(node: Path) -> None:
    runs(node, "ceph-osd-0", NEW)  # restarted before the interruption
    done, calls = run(node, OSD_RESTART, *osd_args(node))
    assert done.returncode == 0, done.stderr
    assert "ceph-osd-0.service already runs" in done.stdout
    restarted = [c for c in calls if c.startswith("systemctl restart")]
    assert restarted == ["systemctl restart ceph-osd-1.service"]
    assert "ceph --connect-timeout 5 osd ok-to-stop 1" in calls


def test_all_on_the_image_restarts_nothing_and_unsets_the_noout_it_had_left(node: Path) -> None:
    runs(node, "ceph-osd-0", NEW)
    runs(node, "ceph-osd-1", NEW)
    (node / "mark").mkdir()
    (node / "mark" / "noout").write_text("")  # killed before it could unset it
    done, calls = run(node, OSD_RESTART, *osd_args(node))
    assert done.returncode == 0, done.stderr
    assert [c for c in calls if "daemon" not in c] == ["ceph --connect-timeout 5 osd unset noout"]
    assert not (node / "mark" / "noout").exists()


def test_a_unit_changed_since_its_container_started_is_restarted(node: Path) -> None:
    runs(node, "ceph-osd-0", NEW)
    runs(node, "ceph-osd-1", NEW)
    (node / "units" / "ceph.conf").write_text("changed")  # a ceph.conf change, same image
    done, calls = run(node, OSD_RESTART, *osd_args(node))
    assert done.returncode == 0, done.stderr
    assert [c for c in calls if c.startswith("systemctl restart")] == [
        "systemctl restart ceph-osd-0.service",
        "systemctl restart ceph-osd-1.service",
    ]


def test_osds_ceph_says_not_ok_to_stop_are_left_running_with_its_reason(node: Path) -> None:
    (node / "busy").write_text("1000")
    args = list(osd_args(node))
    args[1] = "3"  # seconds to wait
    done, calls = run(node, OSD_RESTART, *args)
    assert done.returncode == 1
    assert "OSDs 0 1 are not ok to stop after 3 s: unsafe to stop osd(s)" in done.stderr
    assert not [c for c in calls if "systemctl" in c or "noout" in c], calls


def test_a_monitor_on_the_image_is_not_restarted_and_one_on_the_old_one_is(node: Path) -> None:
    args = mon_args(node)
    runs(node, "ceph-mon-ada", NEW)
    done, calls = run(node, MON_RESTART, *args)
    assert done.returncode == 0 and not [c for c in calls if "systemctl" in c], calls
    runs(node, "ceph-mon-ada", OLD)
    done, calls = run(node, MON_RESTART, *args)
    assert done.returncode == 0, done.stderr
    assert "systemctl restart ceph-mon-ada.service" in calls
