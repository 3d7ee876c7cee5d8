"""Member changes: how the running cluster differs from the inventory, and what is safe to do.

The etcd layer changes membership one member at a time: a new member is added
as a learner, started with the cluster's membership as it was at that moment,
and promoted once it has caught up; a member the inventory dropped is removed,
then stopped on its node with its data moved aside (never deleted). Each step
is taken only while the members that stay keep quorum, by the same arithmetic
as the power layer's guard.

The decisions here are pure (live members in, changes out). What the layer
plans from between its steps is a small record on the operator's machine
(``etcd-membership.json`` in the state directory): who is joining and leaving
this run, and with which initial cluster each joined member first started, so
that its environment file renders the same on every later run. The journal
cannot stand in for it: it keeps fingerprints, not the initial cluster and
member ids a later run renders from, nor the leaver a run stopped after
removing (its node is cleaned up by the next run). The record is the facts'
cache: the gatherers below are its one reader (``load``); the work that
changes it (``etcd/work.py``) starts from the facts, writes it whole to a
temporary name and renames it, and its plan names the facts it changes.
The layer reads it as two facts (``engine/facts.py``): ``EtcdChanges`` (who
joins and leaves: made for this run by the plan ``etcd: membership``, so pending in a
dry run, which does not ask the cluster) and ``EtcdJoined`` (how joined
members started: kept across runs, changed by each ``etcd: add`` plan).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Self

from labctl.engine.facts import FactPending
from labctl.files import write_atomic
from labctl.inventory.model import Inventory
from labctl.render import etcd as render

if TYPE_CHECKING:  # the layer reads the record here: it must not import a driver
    from labctl.drivers.etcd import Member
    from labctl.engine.layer import LayerContext

RECORD_NAME = "etcd-membership.json"


def quorum(voters: int) -> int:
    return voters // 2 + 1


@dataclass
class MembershipRecord:
    """What the layer's later plans need from the membership steps before them."""

    path: Path
    joining: list[str] = field(default_factory=list)  # inventory order, one at a time
    # name -> hex member id, kept until the leaver's node is cleaned up
    leaving: dict[str, str] = field(default_factory=dict)
    # name -> (initial cluster it started with, hex id of the member labctl added)
    joined: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, state_dir: Path) -> MembershipRecord:
        """The record on disk: for the facts' gatherers only (the module paragraph)."""
        path = state_dir / RECORD_NAME
        if not path.exists():
            return cls(path)
        data = json.loads(path.read_text())
        return cls(
            path,
            list(data.get("joining", [])),
            dict(data.get("leaving", {})),
            {name: (v["initial_cluster"], v["member_id"]) for name, v in data["joined"].items()},
        )

    @classmethod
    def known(cls, ctx: LayerContext) -> MembershipRecord:
        """The record as the run's facts hold it, for the work that changes it."""
        found, joined = ctx.fact(EtcdChanges), ctx.fact(EtcdJoined)
        return cls(
            ctx.state_dir / RECORD_NAME,
            list(found.joining),
            dict(found.leaving),
            dict(joined.joined),
        )

    def save(self) -> None:
        data = {
            "joining": self.joining,
            "leaving": dict(sorted(self.leaving.items())),
            "joined": {
                name: {"initial_cluster": cluster, "member_id": member_id}
                for name, (cluster, member_id) in sorted(self.joined.items())
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, (json.dumps(data, indent=2) + "\n").encode())

    def joined_with(self, name: str) -> str | None:
        entry = self.joined.get(name)
        return entry[0] if entry else None


def forget(state_dir: Path) -> None:
    """The next formation starts with no member joining, leaving or joined: the cluster
    the record described is gone with its machines (``labctl sim down``, beside the
    token's ``forget``)."""
    (state_dir / RECORD_NAME).unlink(missing_ok=True)


@dataclass(frozen=True)
class EtcdChanges:
    """A fact: the members joining (inventory order) and leaving (name, hex id) this run."""

    joining: tuple[str, ...] = ()
    leaving: tuple[tuple[str, str], ...] = ()

    @classmethod
    def gather(cls, ctx: LayerContext) -> Self:
        if ctx.dry_run:  # the record on disk is an earlier run's
            raise FactPending("this run's member changes are not known", "etcd: membership")
        record = MembershipRecord.load(ctx.state_dir)
        return cls(tuple(record.joining), tuple(record.leaving.items()))

    def describe(self) -> str:
        if not self.joining and not self.leaving:
            return "no member joins or leaves"
        return Changes(self.joining, tuple(n for n, _ in self.leaving)).describe() or ""


@dataclass(frozen=True)
class EtcdJoined:
    """A fact: how each member that joined a running cluster started (name, (initial
    cluster, hex member id)), in name order."""

    joined: tuple[tuple[str, tuple[str, str]], ...] = ()

    def of(self, name: str) -> tuple[str, str] | None:
        return dict(self.joined).get(name)

    @classmethod
    def gather(cls, ctx: LayerContext) -> Self:
        return cls(tuple(sorted(MembershipRecord.load(ctx.state_dir).joined.items())))

    def describe(self) -> str:
        return f"{len(self.joined)} member(s) joined a running cluster"


@dataclass(frozen=True)
class Changes:
    joining: tuple[str, ...]  # in the inventory, not a voting member yet
    leaving: tuple[str, ...]  # members the inventory no longer has

    def describe(self) -> str | None:
        parts = []
        if self.joining:
            parts.append(f"add {', '.join(self.joining)} (as learners, promoted once caught up)")
        if self.leaving:
            parts.append(f"remove {', '.join(self.leaving)}")
        return "; ".join(parts) or None


def wanted_peers(inventory: Inventory) -> dict[str, str]:
    """Inventory member name -> its peer URL, in inventory order."""
    return {s.name: render.peer_url(inventory, s) for s in render.members(inventory)}


def member_for(peer_url: str, live: Sequence[Member]) -> Member | None:
    # A learner added but not started yet has no name: its peer URL is what it is.
    return next((m for m in live if peer_url in m.peer_urls), None)


def leaver_name(member: Member) -> str:
    return member.name or member.peer_urls[0]


def changes(inventory: Inventory, live: Sequence[Member]) -> Changes:
    wanted = wanted_peers(inventory)
    joining = []
    for name, url in wanted.items():
        member = member_for(url, live)
        if member is None or member.is_learner:
            joining.append(name)
    urls = set(wanted.values())
    leaving = [leaver_name(m) for m in live if not urls & set(m.peer_urls)]
    return Changes(tuple(joining), tuple(leaving))


def promote_refusal(live: Sequence[Member], healthy: set[int], learner: Member) -> str | None:
    """Why promoting ``learner`` would leave the cluster without quorum (None: safe)."""
    voters = [m for m in live if not m.is_learner]
    up = sum(1 for m in voters if m.id in healthy) + (1 if learner.id in healthy else 0)
    need = quorum(len(voters) + 1)
    if up < need:
        return (
            f"promoting {learner.name or 'the learner'} makes {len(voters) + 1} voting members, "
            f"which need {need} healthy; only {up} are"
        )
    return None


def remove_refusal(live: Sequence[Member], healthy: set[int], leaver: Member) -> str | None:
    """Why removing ``leaver`` would break quorum or empty the cluster (None: safe)."""
    voters = [m for m in live if not m.is_learner]
    if leaver.is_learner:
        return None  # a learner does not vote: removing it never costs quorum
    if len(voters) <= 1:
        return f"{leaver_name(leaver)} is the cluster's last voting member"
    staying = [m for m in voters if m.id != leaver.id]
    up = sum(1 for m in staying if m.id in healthy)
    need = quorum(len(staying))
    if up < need:
        sick = sorted(leaver_name(m) for m in staying if m.id not in healthy)
        return (
            f"after removing {leaver_name(leaver)}, {len(staying)} voting members need {need} "
            f"healthy and only {up} are (not healthy: {', '.join(sick)})"
        )
    return None
