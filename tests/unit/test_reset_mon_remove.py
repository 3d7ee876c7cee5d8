"""A reset's monitor removal: the daemon known gone before the monmap drops it.

Issue 24, found on the second lab: `labctl reset cyd` reported `mon-remove` done while
cyd's monitor was still in quorum. A monitor that still runs when `ceph mon remove`
takes it out of the map joins again (MMonJoin), so the step must not remove it until
its container is gone, and must read the monmap after. The node and the monitors are
played here by a small model of that behaviour (a node's container engine and the
monmap), since a Ceph cluster cannot be started in a unit test; the second lab's
e2e test (tests/e2e/test_second_lab.py) runs the step against real ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from labctl.day2.apply import Reset
from labctl.day2.retire import Step
from labctl.drivers.ssh import RunResult
from labctl.errors import DriverTimeout, LabctlError
from labctl.inventory import require_inventory
from tests.conftest import REFERENCE

MON = "wind"


@dataclass
class Node:
    """A node whose unit manager lost track of the monitor's container (the defect's
    shape): `systemctl stop` returns 0 and leaves the container running; stopping the
    container by name stops it (`--rm`: then there is no such container)."""

    running: bool = True
    stubborn: bool = False  # the container never stops
    ran: list[tuple[str, ...]] = field(default_factory=list)

    def run(self, argv: tuple[str, ...], **_: Any) -> RunResult:
        self.ran.append(tuple(argv))
        if argv[1:2] == ("stop",) and argv[0].endswith("docker") and not self.stubborn:
            self.running = False
        if argv[1:2] == ("inspect",):
            if self.running:
                return RunResult(tuple(argv), 0, b"true\n", b"")
            return RunResult(tuple(argv), 1, b"", b"Error: No such object: ceph-mon-wind\n")
        return RunResult(tuple(argv), 0, b"", b"")


@dataclass
class Connector:
    node: Node

    def ssh(self, name: str) -> Node:
        assert name == MON
        return self.node

    def close(self) -> None:
        pass


class ModelReset(Reset):
    """The monmap as Ceph keeps it: a monitor removed while its daemon runs joins again;
    a stopped monitor stays counted in the quorum for a few reads (until the others'
    lease runs out), and a removal sent meanwhile is lost, as seen on the second lab
    (`ceph mon remove` exited 0, the monmap kept its epoch)."""

    monmap: list[str]
    lag: int = 2  # reads of the quorum that still count the stopped monitor
    keeps: bool = False  # the map keeps the monitor whatever happens (the check's case)
    removals: int = 0

    def _counted(self) -> bool:
        return MON in self.monmap and (self._connector.node.running or self.lag > 0)

    def _ceph(self, *args: str) -> str:
        assert args == ("mon", "remove", MON), args
        self.removals += 1
        if MON in self.monmap and not self._counted() and not self.keeps:
            self.monmap.remove(MON)
        return f"removing mon.{MON}, there will be 2 monitors"

    def _monmap(self) -> tuple[list[str], list[str]]:
        quorum = [m for m in self.monmap if m != MON or self._counted()]
        if not self._connector.node.running:
            self.lag -= 1
        return list(self.monmap), quorum


def reset(node: Node, tmp_path: Path, wait: float = 30.0) -> ModelReset:
    done = ModelReset(require_inventory(REFERENCE), tmp_path, tmp_path, mon_gone_wait=wait,
                      mon_poll=0.0)  # fmt: skip
    done._connector = Connector(node)
    done.monmap = ["fohn", "chequita", MON]
    return done


def test_a_monitor_whose_container_outlives_its_unit_is_stopped_before_removal(
    tmp_path: Path,
) -> None:
    node = Node()
    said: list[str] = []
    step = reset(node, tmp_path)
    step.say = said.append
    step.do(Step(MON, "mon-remove", MON, ""))
    assert step.monmap == ["fohn", "chequita"]
    assert ("/usr/bin/docker", "stop", f"ceph-mon-{MON}") in node.ran
    assert any("outlived its unit's stop" in line for line in said), said
    assert step.removals == 1  # sent once the quorum had let it go, not before


def test_a_removal_lost_in_an_election_is_sent_again_until_the_monmap_drops_it(
    tmp_path: Path,
) -> None:
    step = reset(Node(running=False), tmp_path)
    step.lag = 0
    lost = {"left": 1}
    remove = ModelReset._ceph

    def flaky(self: ModelReset, *args: str) -> str:
        if lost["left"]:
            lost["left"] -= 1
            self.removals += 1
            return f"removing mon.{MON}, there will be 2 monitors"  # and nothing changed
        return remove(self, *args)

    step._ceph = flaky.__get__(step)  # type: ignore[method-assign]
    step.do(Step(MON, "mon-remove", MON, ""))
    assert step.monmap == ["fohn", "chequita"] and step.removals == 2


def test_a_monitor_that_will_not_stop_fails_the_step_with_a_sentence(tmp_path: Path) -> None:
    step = reset(Node(stubborn=True), tmp_path, wait=0.0)
    with pytest.raises(DriverTimeout, match=f"mon.{MON} still runs on {MON}"):
        step.do(Step(MON, "mon-remove", MON, ""))
    assert MON in step.monmap and step.removals == 0  # never removed while it runs


def test_a_monitor_the_quorum_still_counts_is_waited_out_then_removed(tmp_path: Path) -> None:
    step = reset(Node(running=False), tmp_path)
    step.lag = 3
    step.do(Step(MON, "mon-remove", MON, ""))
    assert step.monmap == ["fohn", "chequita"] and step.removals == 1


def test_a_monitor_the_quorum_keeps_counting_fails_the_step_with_a_sentence(
    tmp_path: Path,
) -> None:
    step = reset(Node(running=False), tmp_path, wait=0.0)
    step.lag = 10**6
    with pytest.raises(DriverTimeout, match=f"mon.{MON} is stopped but still in the quorum"):
        step.do(Step(MON, "mon-remove", MON, ""))
    assert step.removals == 0


def test_a_monitor_still_in_the_monmap_after_removal_fails_the_step(tmp_path: Path) -> None:
    step = reset(Node(running=False), tmp_path)
    step.lag = 0
    step.keeps = True
    step.mon_gone_wait = 0.0
    with pytest.raises(LabctlError, match=f"mon.{MON} is still in the monmap"):
        step.do(Step(MON, "mon-remove", MON, ""))
