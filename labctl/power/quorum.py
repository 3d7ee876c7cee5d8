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
) -> list[str]:
    """Sentences explaining why taking ``going_down`` down would lose a quorum.

    ``is_up`` maps server names to their observed state; ``None`` (unknown, e.g.
    a BMC that did not answer) counts as down, because a guard that guesses
    "up" is no guard.
    """
    leaving = set(going_down)
    refusals: list[str] = []
    for role, label in GUARDED_ROLES.items():
        members = [s.name for s in inventory.with_role(role)]
        if not members:
            continue
        needed = len(members) // 2 + 1
        down_now = [m for m in members if not is_up.get(m)]
        after = [m for m in members if m in leaving or m in down_now]
        remaining = len(members) - len(after)
        if remaining >= needed or not (leaving & set(members)):
            continue
        already = (
            f"{', '.join(sorted(down_now))} {'is' if len(down_now) == 1 else 'are'} already down "
            "or unknown; "
            if down_now
            else ""
        )
        taking = ", ".join(sorted(leaving & set(members)))
        refusals.append(
            f"{label}: {needed} of {len(members)} members must stay up for quorum; "
            f"{already}taking down {taking} would leave {remaining}"
        )
    return refusals
