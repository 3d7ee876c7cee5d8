"""Plans: the ordered actions of one layer, grouped by target, with dependencies.

A plan is data. It prints as a tree for people and as JSON for programs, and it
is what the executor applies. Steps on one target run in list order; ``after``
adds ordering across targets (e.g. every etcd member's certificate before any
member starts).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from labctl.engine.actions import Action


@dataclass(frozen=True)
class Step:
    id: str
    action: Action
    after: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        return self.action.host


@dataclass(frozen=True)
class Plan:
    layer: str
    steps: tuple[Step, ...] = field(default_factory=tuple)
    # Machines this plan installs afresh: what the journal remembers of them is
    # forgotten before it runs (docs/architecture.md, "Journal and lock").
    forgets: frozenset[str] = frozenset()
    # The facts (engine/facts.py) applying this plan makes or changes: once it is
    # applied, their next read gathers them again. Not part of what the plan prints.
    makes: tuple[type, ...] = ()

    def __post_init__(self) -> None:
        ids = [s.id for s in self.steps]
        if len(ids) != len(set(ids)):
            raise ValueError(f"plan {self.layer}: step ids are not unique")
        known = set(ids)
        for step in self.steps:
            missing = set(step.after) - known
            if missing:
                raise ValueError(f"plan {self.layer}: step {step.id} waits for unknown {missing}")

    @classmethod
    def of(cls, layer: str, actions: Iterable[Action], makes: tuple[type, ...] = ()) -> Plan:
        """A plan with one step per action, ids derived from the action keys."""
        return cls(layer, tuple(Step(a.key, a) for a in actions), makes=makes)

    @classmethod
    def rolling(
        cls, layer: str, actions: Iterable[Action], is_restart: Callable[[Action], bool]
    ) -> Plan:
        """``of``, with the restarts one at a time across targets: each waits for the one
        before (a restart step that waits for its daemon's health makes it a rolling
        restart: the next node's goes only once this one is back)."""
        steps: list[Step] = []
        previous: tuple[str, ...] = ()
        for action in actions:
            if is_restart(action):
                steps.append(Step(action.key, action, previous))
                previous = (action.key,)
            else:
                steps.append(Step(action.key, action))
        return cls(layer, tuple(steps))

    def targets(self) -> dict[str, list[Step]]:
        grouped: dict[str, list[Step]] = {}
        for step in self.steps:
            grouped.setdefault(step.target, []).append(step)
        return grouped

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "layer": self.layer,
            "targets": {
                target: [{"id": s.id, "after": list(s.after), **s.action.as_dict()} for s in steps]
                for target, steps in self.targets().items()
            },
        }
        if self.forgets:
            found["forgets"] = sorted(self.forgets)
        return found

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def render_tree(self) -> str:
        lines = [f"{self.layer}: {len(self.steps)} step(s) on {len(self.targets())} target(s)"]
        if self.forgets:
            lines.append(
                f"  (forgets what the journal remembers of {', '.join(sorted(self.forgets))})"
            )
        for target, steps in self.targets().items():
            lines.append(f"  {target}")
            for step in steps:
                after = f"  (after {', '.join(step.after)})" if step.after else ""
                lines.append(f"    - {step.action.describe()}{after}")
        return "\n".join(lines)
