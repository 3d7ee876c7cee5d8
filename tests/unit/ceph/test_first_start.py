"""A first bootstrap's Ceph daemons start at once, with nothing asked of Ceph first.

On a first bootstrap the monitors' and OSDs' "restart" steps are their daemons' first
start: labctl has just made them and nothing runs yet. The restart scripts used to ask
each daemon's admin socket whether the cluster was formed (under a container runtime a
container run of the CLI each, 0.6-0.9 s) and then restart a node's OSDs one after the
other; now, when every unit is inactive and no container of its name runs (``idle``,
``ceph-current.sh``), nothing can be stopped, so the OSDs start all at once and the
monitor at once, without asking. A daemon that runs, under its unit or as a container
of its name, keeps the guards (``ok-to-stop``, the quorum wait). The scripts run here
under sh with stand-ins for ceph, systemctl and the container engine.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from labctl.layers.ceph import MON_RESTART, OSD_RESTART
from tests.unit.ceph.test_rolling_restart import stand_in_node

IMAGE = "quay.io/ceph/ceph:v16.2.15"
OSDS = ("ceph-osd-0.service:0", "ceph-osd-1.service:1", "ceph-osd-2.service:2")

# ceph: logs "ceph ARGS"; a daemon answers its socket when the test made it "up", an
# OSD also once its unit was (re)started.
CEPH = """#!/bin/sh
echo "ceph $*" >> {d}/calls
case "$*" in
  *"daemon osd."*) n=${{*#*daemon osd.}} n=${{n%% *}}
    [ -e {d}/up-osd.$n ] || [ -e {d}/begun-ceph-osd-$n.service ] || exit 22
    echo '{{"state": "active"}}' ;;
  *"daemon mon."*) [ -e {d}/up-mon ] || exit 22; echo '{{"state": "peon"}}' ;;
  *"pg stat"*) echo '{{"num_pg_by_state": [{{"name": "active+clean", "num": 32}}]}}' ;;
esac
"""
# systemctl: a unit is active when the test says so; a start waits (up to 2 s) until
# as many starts as the test expects have begun, so starts made one after the other
# log "alone".
SYSTEMCTL = """#!/bin/sh
d={d}
case "$1" in
  is-active) shift
    for u; do if [ -e "$d/active-$u" ]; then echo active; else echo inactive; fi; done
    exit 0 ;;
  start|restart)
    echo "systemctl $*" >> "$d/calls"
    : > "$d/begun-$2"
    i=0
    until [ "$(find "$d" -name 'begun-*' | wc -l)" -ge "$(cat "$d/expect")" ]; do
      i=$((i + 1))
      if [ "$i" -ge 20 ]; then echo "alone $2" >> "$d/calls"; break; fi
      sleep 0.1
    done ;;
  *) echo "systemctl $*" >> "$d/calls" ;;
esac
"""
# The container engine: `ps` lists the containers the test says run; nothing else.
ENGINE = """#!/bin/sh
case "$1" in ps) cat {d}/containers 2>/dev/null || true ;; *) exit 1 ;; esac
"""


@pytest.fixture
def node(tmp_path: Path) -> Path:
    """A folder standing for a node: the stand-ins, units and ceph.conf, nothing running."""
    stand_in_node(tmp_path, CEPH, SYSTEMCTL, ENGINE,
                  ("ceph-osd-0.service", "ceph-osd-1.service", "ceph-osd-2.service",
                   "ceph-mon-ada.service"))  # fmt: skip
    return tmp_path


def run(node: Path, expect: int, body: str, *args: str) -> tuple[int, list[str]]:
    (node / "expect").write_text(str(expect))
    for path in [node / "calls", *node.glob("begun-*")]:
        path.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{node / 'bin'}:{os.environ['PATH']}"}
    done = subprocess.run(["sh", "-c", body, "test", *args], capture_output=True, text=True,
                          env=env, timeout=60)  # fmt: skip
    calls = node / "calls"
    return done.returncode, calls.read_text().splitlines() if calls.exists() else []


def osd_args(node: Path, runtime: str) -> tuple[str, ...]:
    units = node / "units"
    live = (str(node / "bin" / "engine"), IMAGE) if runtime == "container" else ("", "")
    return ("ceph", "30", *live, str(units), str(units / "ceph.conf"),
            str(node / "mark" / "noout"), *OSDS)  # fmt: skip


@pytest.mark.parametrize("runtime", ["container", "host"])
def test_a_nodes_osds_not_running_start_at_once_and_a_running_one_keeps_the_guards(
    node: Path, runtime: str
) -> None:
    code, calls = run(node, 3, OSD_RESTART, *osd_args(node, runtime))
    assert code == 0
    # No admin socket asked (no container run of the CLI), no ok-to-stop, no noout ...
    assert not [c for c in calls if c.startswith("ceph")], calls
    # ... and all three started together: none waited for the one before it.
    assert sorted(calls) == [f"systemctl start ceph-osd-{i}.service" for i in range(3)]

    # One OSD of the node running (under its unit, or as a container of its name while
    # its unit is not active): nothing is idle, so Ceph is asked before any restart.
    (node / "up-osd.1").write_text("")
    if runtime == "container":
        (node / "containers").write_text("ceph-mon-ada\nceph-osd-1\n")
    else:
        (node / "active-ceph-osd-1.service").write_text("")
    code, calls = run(node, 1, OSD_RESTART, *osd_args(node, runtime))
    assert code == 0
    restarts = [i for i, c in enumerate(calls) if c.startswith("systemctl restart")]
    ok_to_stop = calls.index("ceph --connect-timeout 5 osd ok-to-stop 0 1 2")
    assert len(restarts) == 3 and ok_to_stop < restarts[0], calls
    assert "ceph --connect-timeout 5 osd set noout" in calls


def test_a_monitor_not_running_starts_without_its_socket_asked_and_a_running_one_is(
    node: Path,
) -> None:
    units = node / "units"
    args = ("ceph", "ada", "ceph-mon-ada.service", "30", str(node / "bin" / "engine"), IMAGE,
            str(units), str(units / "ceph.conf"))  # fmt: skip
    code, calls = run(node, 1, MON_RESTART, *args)
    assert code == 0
    assert calls == ["systemctl start ceph-mon-ada.service"]

    # Its container running (its unit reported inactive): asked, restarted, waited for.
    (node / "containers").write_text("ceph-mon-ada\n")
    (node / "up-mon").write_text("")
    code, calls = run(node, 1, MON_RESTART, *args)
    assert code == 0
    assert calls[0] == "ceph daemon mon.ada mon_status"
    assert "systemctl restart ceph-mon-ada.service" in calls
