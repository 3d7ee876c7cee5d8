"""The facts board under layers running at once (engine/facts.py, engine/graph.py).

Independent layers plan in threads of their own and read the one board. A gatherer
runs under its own kind's lock: one layer's slow gatherer (an unsealing) does not
hold up another layer reading another kind; a kind two layers read at once is still
gathered once; and a gather that began before a plan changed its fact is not kept.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from labctl.engine.facts import Facts

GUARD = 10.0  # seconds a thread waits for the other before the test fails, never hangs


@dataclass(frozen=True)
class Slow:
    """Gathered once ``Quick`` has been gathered (which it cannot be while it holds up
    the board), or after ``GUARD``."""

    quick_first: bool
    started: ClassVar[threading.Event]
    quick_done: ClassVar[threading.Event]

    @classmethod
    def gather(cls, ctx: Any) -> Self:
        cls.started.set()
        return cls(cls.quick_done.wait(GUARD))

    def describe(self) -> str:
        return "slow"


@dataclass(frozen=True)
class Quick:
    @classmethod
    def gather(cls, ctx: Any) -> Self:
        Slow.quick_done.set()
        return cls()

    def describe(self) -> str:
        return "quick"


def test_a_slow_gatherer_does_not_hold_up_a_read_of_another_kind() -> None:
    Slow.started, Slow.quick_done = threading.Event(), threading.Event()
    facts = Facts()
    facts.expect((Slow,), "ceph")
    facts.expect((Quick,), "etcd")
    found: list[Slow] = []
    reader = threading.Thread(target=lambda: found.append(facts.read(Slow, None)))
    reader.start()
    assert Slow.started.wait(GUARD)
    assert facts.read(Quick, None) == Quick()  # while Slow's gatherer runs
    reader.join(GUARD)
    assert found == [Slow(quick_first=True)]


@dataclass(frozen=True)
class Counted:
    gathered: ClassVar[int] = 0
    gate: ClassVar[threading.Event]
    inside: ClassVar[threading.Event]
    value: int = 0

    @classmethod
    def gather(cls, ctx: Any) -> Self:
        cls.gathered += 1
        cls.inside.set()
        cls.gate.wait(GUARD)
        return cls(cls.gathered)

    def describe(self) -> str:
        return "counted"


def _counted() -> Facts:
    Counted.gathered = 0
    Counted.gate, Counted.inside = threading.Event(), threading.Event()
    facts = Facts()
    facts.expect((Counted,), "a")
    return facts


def test_a_kind_two_layers_read_at_once_is_gathered_once() -> None:
    facts = _counted()
    found: list[Counted] = []
    first = threading.Thread(target=lambda: found.append(facts.read(Counted, None)))
    first.start()
    assert Counted.inside.wait(GUARD)
    second = threading.Thread(target=lambda: found.append(facts.read(Counted, None)))
    second.start()
    Counted.gate.set()
    first.join(GUARD)
    second.join(GUARD)
    assert found == [Counted(1), Counted(1)]
    assert Counted.gathered == 1


def test_a_gather_begun_before_a_plan_changed_its_fact_is_not_kept() -> None:
    facts = _counted()
    found: list[Counted] = []
    reader = threading.Thread(target=lambda: found.append(facts.read(Counted, None)))
    reader.start()
    assert Counted.inside.wait(GUARD)
    changing = threading.Thread(target=facts.changed, args=((Counted,),))
    changing.start()
    changing.join(GUARD)
    assert not changing.is_alive()  # a plan's change waits for no gatherer
    Counted.gate.set()
    reader.join(GUARD)
    assert found == [Counted(1)]  # what the read found as it began
    assert facts.read(Counted, None) == Counted(2)  # gathered again after the change
