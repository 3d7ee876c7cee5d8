"""The quorum guard: refuse power actions that would leave etcd or Ceph without a majority.

Pure: it takes the observed power states and the servers about to go down and
returns the reasons to refuse. The power command and, later, rolling reboots
ask it before acting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from labctl.inventory.model import Inventory

GUARDED_ROLES = {"etcd": "etcd", "ceph-mon": "Ceph monitors"}


def quorum_refusals(
    inventory: Inventory,
    is_up: Mapping[str, bool | None],
    going_down: Iterable[str],
    unwell: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """Sentences explaining why taking ``going_down`` down would lose a quorum.

    ``is_up`` maps server names to their observed power; ``None`` (unknown, e.g.
    a BMC that did not answer) counts as down, because a guard that guesses
    "up" is no guard. ``unwell[role]`` names members that are powered on but
    whose service says they are not healthy (an etcd member that does not
    answer), with why: they count as down too.
    """
    leaving = set(going_down)
    refusals: list[str] = []
    for role, label in GUARDED_ROLES.items():
        members = [s.name for s in inventory.with_role(role)]
        if not members:
            continue
        needed = len(members) // 2 + 1
        sick = {m: why for m, why in (unwell or {}).get(role, {}).items() if is_up.get(m)}
        down_now = [m for m in members if not is_up.get(m) and m not in sick]
        after = [m for m in members if m in leaving or m in down_now or m in sick]
        remaining = len(members) - len(after)
        if remaining >= needed or not (leaving & set(members)):
            continue
        already = (
            f"{', '.join(sorted(down_now))} {'is' if len(down_now) == 1 else 'are'} already down "
            "or unknown; "
            if down_now
            else ""
        )
        already += "".join(
            f"{m} is on but its {label} member is unhealthy ({sick[m]}); "
            for m in sorted(sick)
            if m not in leaving
        )
        taking = ", ".join(sorted(leaving & set(members)))
        refusals.append(
            f"{label}: {needed} of {len(members)} members must stay up for quorum; "
            f"{already}taking down {taking} would leave {remaining}"
        )
    return refusals
