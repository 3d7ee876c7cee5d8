"""A reset's wait for Ceph to call a host's OSDs safe to destroy: looked at every second.

`labctl reset` takes a server's OSDs out, then asks `ceph osd safe-to-destroy` until
Ceph says yes. It asked every 5 s, so the wait overshot Ceph's own answer by 2.5 s on
average (the second lab's reset, issue 28). Ceph is played here by a `_ceph` that says
"not yet" a few times; the clock is a fake one that sleeping moves, so the test reads
how long the reset waited past Ceph's yes without waiting itself. The second lab's
e2e test (tests/e2e/test_second_lab.py) runs the step against a real Ceph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from labctl.day2 import apply
from labctl.day2.apply import Reset
from labctl.day2.retire import Step
from labctl.errors import LabctlError
from labctl.inventory import require_inventory
from tests.conftest import REFERENCE


@dataclass
class Clock:
    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class CephReset(Reset):
    """Ceph says the OSDs are safe to destroy ``ready_at`` seconds into the wait."""

    clock: Clock = field(default_factory=Clock)
    ready_at: float = 3.2
    asked: list[tuple[str, ...]] = field(default_factory=list)

    def _ceph(self, *args: str) -> str:
        self.asked.append(args)
        if self.clock.now - 1000.0 < self.ready_at:
            raise LabctlError("Error EAGAIN: OSD(s) 3 have 12 pgs currently mapped to them")
        return ""


def test_the_reset_sees_ceph_say_safe_within_a_second_and_says_it_waits_every_5_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    said: list[str] = []
    reset = CephReset(require_inventory(REFERENCE), tmp_path, tmp_path, say=said.append)
    reset.ready_at = 12.2
    monkeypatch.setattr(apply, "time", reset.clock)
    reset.do(Step("cyd", "osd-wait", "3", "wait for osd.3 to be safe to destroy"))
    waited = reset.clock.now - 1000.0
    assert reset.ready_at <= waited <= reset.ready_at + 1.0, reset.clock.slept
    assert set(reset.asked) == {("osd", "safe-to-destroy", "3")}
    # Said when the wait began and every 5 s after, not at every look.
    assert said == ["  cyd: waiting for Ceph to move data off osd 3"] * 3, said
