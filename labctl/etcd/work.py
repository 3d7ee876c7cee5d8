"""The etcd layer's local work: a snapshot before a change, and the cluster's health after.

``etcd.snapshot`` compares the members' configuration about to be applied with
the one recorded at the last run (``snapshots.py``): unchanged, it does
nothing; changed, it snapshots the running cluster first (a cluster not formed
yet has nothing to lose, so it only records the configuration). ``etcd.healthy``
waits until every member answers healthy and then verifies the cluster.

Member changes (``membership.py`` decides, these carry out): ``etcd.membership``
compares the live members with the inventory and records who joins and who
leaves; ``etcd.add`` adds one joiner as a learner and records the initial
cluster it must start with; ``etcd.promote`` waits for it to catch up and
promotes it; ``etcd.remove`` removes one leaver; ``etcd.left`` closes a
leaver's entry once its node was cleaned up. Each refuses a step that would
leave the cluster without quorum, in a sentence that names the sick members.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from labctl.drivers.etcd import (
    EtcdClient,
    EtcdEndpoint,
    EtcdRequestError,
    LearnerNotReadyError,
    Member,
)
from labctl.errors import DriverTimeout, LabctlError
from labctl.etcd.cluster import EtcdSession
from labctl.etcd.membership import (
    MembershipRecord,
    changes,
    leaver_name,
    member_for,
    promote_refusal,
    remove_refusal,
    wanted_peers,
)
from labctl.etcd.snapshots import SnapshotIndex
from labctl.etcd.token import token_of
from labctl.render import etcd as render

if TYPE_CHECKING:
    from labctl.engine.layer import LayerContext


def _digest(ctx: LayerContext) -> str:
    runtime = render.platform_runtime(ctx.inventory, ctx.platform)
    return render.config_digest(ctx.inventory, runtime, token_of(ctx))


class SnapshotWork:
    def apply(self, ctx: LayerContext) -> bool:
        with EtcdSession(ctx.inventory, ctx.base_dir) as session:
            index = SnapshotIndex.load(session.snapshot_dir())
            digest = _digest(ctx)
            if index.config_digest == digest:
                return False
            answering = session.reachable_unhealthy() is not None
            if answering:
                session.snapshot("before a change to the members' configuration")
                index = SnapshotIndex.load(session.snapshot_dir())
            index.config_digest = digest
            index.save()
            return answering

    def observe(self, ctx: LayerContext) -> str | None:
        with EtcdSession(ctx.inventory, ctx.base_dir) as session:
            if SnapshotIndex.load(session.snapshot_dir()).config_digest == _digest(ctx):
                return None
            if session.reachable_unhealthy() is None:
                return "members' configuration changes; no cluster answers yet, so nothing to save"
            return "members' configuration changes: a snapshot is taken first"


class HealthyWork:
    def apply(self, ctx: LayerContext) -> bool:
        etcd = ctx.inventory.cluster.etcd
        with EtcdSession(ctx.inventory, ctx.base_dir) as session:
            session.wait_healthy(etcd.health_timeout)
            problems = session.verify()
        if problems:
            raise LabctlError(
                f"etcd answers but is not as the inventory says: {'; '.join(problems)}"
            )
        return False  # a check: it changes nothing

    def observe(self, ctx: LayerContext) -> str | None:
        with EtcdSession(ctx.inventory, ctx.base_dir) as session:
            try:
                sick = session.unhealthy()
            except LabctlError as exc:
                return str(exc)
        if sick:
            return "not healthy yet: " + ", ".join(sorted(sick))
        return None


T = TypeVar("T")

# etcd refuses a member change until every member has been connected for a few
# seconds (its strict reconfiguration check): right after the previous change
# that is a wait, not a failure.
UNSETTLED = "unhealthy cluster"


def _once_settled(call: Callable[[], T], what: str, deadline: float) -> T:
    end = time.monotonic() + deadline
    while True:
        try:
            return call()
        except EtcdRequestError as exc:
            if UNSETTLED not in str(exc):
                raise
            if time.monotonic() + 1.0 > end:
                raise DriverTimeout(
                    f"etcd: {what}: the cluster was still settling after {deadline:g} s ({exc})"
                ) from exc
            time.sleep(1.0)


def _healthy_ids(session: EtcdSession, live: Sequence[Member]) -> set[int]:
    """Members that answer healthy now, asked at their own client URLs (a leaver's
    too: the inventory no longer names it)."""
    asked = {
        member.id: EtcdEndpoint(leaver_name(member), member.client_urls[0])
        for member in live
        if member.client_urls
    }
    with EtcdClient(list(asked.values()), session.tls(), session.timeout) as client:
        return {i for i, endpoint in asked.items() if client.healthy(endpoint) is None}


class MembershipWork:
    """Record who joins and who leaves this run (a record only: the lab is not touched)."""

    def apply(self, ctx: LayerContext) -> bool:
        record = MembershipRecord.known(ctx)
        with EtcdSession(ctx.inventory, ctx.base_dir) as session:
            if session.reachable_unhealthy() is None:
                record.joining = []  # no cluster answers: the members form a new one
            else:
                live = session.members()
                found = changes(ctx.inventory, live)
                record.joining = list(found.joining)
                for member in live:
                    if leaver_name(member) in found.leaving:
                        record.leaving[leaver_name(member)] = f"{member.id:x}"
        record.save()
        return False

    def observe(self, ctx: LayerContext) -> str | None:
        with EtcdSession(ctx.inventory, ctx.base_dir) as session:
            if session.reachable_unhealthy() is None:
                return None
            return changes(ctx.inventory, session.members()).describe()


class AddWork:
    """Add one joiner as a learner (unless it already is one) and record how it starts."""

    def __init__(self, name: str) -> None:
        self.name = name

    def apply(self, ctx: LayerContext) -> bool:
        url = wanted_peers(ctx.inventory)[self.name]
        record = MembershipRecord.known(ctx)
        with EtcdSession(ctx.inventory, ctx.base_dir) as session:
            client = session.client()
            live = client.members()
            member = member_for(url, live)
            added = member is None
            if member is None:
                member = _once_settled(
                    lambda: client.add_member([url], learner=True),
                    f"adding {self.name}",
                    ctx.inventory.cluster.etcd.health_timeout,
                )
                live = client.members()
            if not member.is_learner:
                return False  # a voting member already: nothing to join
            # What etcd checks a joiner against: every member's peer URLs, now.
            cluster = ",".join(
                f"{self.name if m.id == member.id else leaver_name(m)}={m.peer_urls[0]}"
                for m in live
            )
            record.joined[self.name] = (cluster, f"{member.id:x}")
            record.save()
            return added

    def observe(self, ctx: LayerContext) -> str | None:
        return f"{self.name} would be added to the cluster as a learner"


class PromoteWork:
    """Promote one learner once it has caught up with the leader, if quorum allows."""

    def __init__(self, name: str) -> None:
        self.name = name

    def apply(self, ctx: LayerContext) -> bool:
        url = wanted_peers(ctx.inventory)[self.name]
        deadline = ctx.inventory.cluster.etcd.health_timeout
        end = time.monotonic() + deadline
        with EtcdSession(ctx.inventory, ctx.base_dir) as session:
            client = session.client()
            while True:
                live = client.members()
                member = member_for(url, live)
                if member is None:
                    raise LabctlError(
                        f"etcd: {self.name} is not a member to promote (removed meanwhile?); "
                        "run bootstrap again to add it"
                    )
                if not member.is_learner:
                    return False
                refusal = promote_refusal(live, _healthy_ids(session, live), member)
                if refusal is not None:
                    raise LabctlError(f"etcd: not promoting {self.name}: {refusal}")
                try:
                    client.promote_member(member.id)
                    return True
                except LearnerNotReadyError as exc:
                    if time.monotonic() + 1.0 > end:
                        raise DriverTimeout(
                            f"etcd: {self.name} has not caught up with the leader after "
                            f"{deadline:g} s ({exc}); is its unit running on the node?"
                        ) from exc
                    time.sleep(1.0)

    def observe(self, ctx: LayerContext) -> str | None:
        return f"{self.name} would be promoted to a voting member once caught up"


class RemoveWork:
    """Remove one member the inventory no longer has, if the rest keep quorum."""

    def __init__(self, name: str) -> None:
        self.name = name

    def apply(self, ctx: LayerContext) -> bool:
        with EtcdSession(ctx.inventory, ctx.base_dir) as session:
            client = session.client()
            live = client.members()
            member = next((m for m in live if leaver_name(m) == self.name), None)
            if member is None:
                return False  # gone already (a run stopped after removing it)
            refusal = remove_refusal(live, _healthy_ids(session, live), member)
            if refusal is not None:
                raise LabctlError(f"etcd: not removing {self.name}: {refusal}")
            found = member
            _once_settled(
                lambda: client.remove_member(found.id),
                f"removing {self.name}",
                ctx.inventory.cluster.etcd.health_timeout,
            )
            return True

    def observe(self, ctx: LayerContext) -> str | None:
        return f"{self.name} would be removed from the cluster"


class LeftWork:
    """Close a leaver's entry in the record once its node was cleaned up."""

    def __init__(self, name: str) -> None:
        self.name = name

    def apply(self, ctx: LayerContext) -> bool:
        record = MembershipRecord.known(ctx)
        record.leaving.pop(self.name, None)
        record.joined.pop(self.name, None)
        record.save()
        return False

    def observe(self, ctx: LayerContext) -> str | None:
        return None
