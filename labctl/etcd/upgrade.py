"""A change of etcd version, rolled through the running cluster member by member.

Without this, a new ``cluster.etcd.version`` rewrote every member's unit and the
members plan restarted them one after another in inventory order, each waiting
only for its own ``/health``: nothing looked at the other members before a
member was stopped (a member already down, and the next restart left the
cluster without quorum), the leader went whenever its turn came (an election in
the middle of the upgrade), nothing checked that a member came back at the new
version or had caught up, and nothing checked the cluster version afterwards.

Now, when a member that answers reports another version than the inventory's
(``cluster.etcd.version``, else the tag of ``cluster.etcd.image``), the etcd
layer's members plan is built by ``upgrade_plan``: the members one at a time,
those already at the new version first (nothing to do but check), then the
followers in inventory order, the leader last. Around each member's restart:

* ``etcd.upgrade`` (before): every *other* member must answer healthy (waited
  for a few seconds, then refused naming the member and etcd's own reason: never
  below quorum, never two members down); if the member leads, leadership is moved
  first (``move-leader``) to a healthy member, preferring one already upgraded.
* the member's own restart (``data/scripts/etcd-restart.sh``), which also skips a
  member that already answers at the new version and started after its files were
  last written: a run killed after that restart does not restart it again;
* ``etcd.upgraded`` (after): the member answers healthy, at the new version, and
  its raft index is within ``CATCH_UP`` of the leader's, within ``health_timeout``;
  else a sentence naming it, and the next member is not touched.

Last, ``etcd.cluster-version`` waits until the cluster version (``/version``'s
``etcdcluster``, which etcd moves only once every member runs the new minor) is
the new minor. Resuming needs no record: the order and what is left are read live
(the fact ``EtcdVersions``), and every step checks the member as it is now.

``order`` and ``upgrade_plan`` are pure; ``EtcdVersions.gather`` asks the members
(only when the journal says the etcd layer ran here); the works below are the
layer's local steps.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from labctl.engine.actions import Action, LocalStep
from labctl.engine.plan import Plan, Step
from labctl.errors import DriverTimeout, LabctlError
from labctl.inventory.model import Inventory
from labctl.render import etcd as render

if TYPE_CHECKING:  # the layer imports this module: drivers only inside the works
    from labctl.drivers.etcd import EndpointStatus, EtcdEndpoint
    from labctl.engine.layer import LayerContext
    from labctl.etcd.cluster import EtcdSession

UPGRADE = "etcd.upgrade"
UPGRADED = "etcd.upgraded"
CLUSTER_VERSION = "etcd.cluster-version"
# How far behind the leader's raft index a restarted member may be and count as caught
# up (etcd's own learner promotion asks for 90 % of the leader's log; this is tighter).
CATCH_UP = 1000
# How long the guard waits for the other members to answer healthy before it refuses
# (a member that was restarted a moment ago, by a run that was killed, is coming back).
GUARD_WAIT = 20.0

_TAG = re.compile(r":v?([0-9]+\.[0-9]+\.[0-9]+)$")


def wanted_version(inventory: Inventory) -> str | None:
    """The etcd version the inventory asks for: ``cluster.etcd.version``, else what the
    tag of ``cluster.etcd.image`` says (None when neither names one)."""
    etcd = inventory.cluster.etcd
    if etcd.version:
        return etcd.version
    found = _TAG.search(etcd.image or "")
    return found.group(1) if found else None


def cluster_version(version: str) -> str:
    """The cluster version etcd reports once every member runs ``version``: 3.5.21 -> 3.5.0."""
    major, minor = version.split(".")[:2]
    return f"{major}.{minor}.0"


@dataclass(frozen=True)
class EtcdVersions:
    """A fact: each member's etcd version as it reports it now ("" when it did not
    answer), and which member leads (empty when the etcd layer never ran here, or no
    member answered: ``unread`` says why)."""

    versions: tuple[tuple[str, str], ...] = ()
    leader: str = ""
    unread: str = ""

    @classmethod
    def gather(cls, ctx: LayerContext) -> Self:
        from labctl.engine.journal import Journal, journal_path
        from labctl.etcd.cluster import EtcdSession

        if not journal_path(ctx.state_dir).exists():
            return cls()
        if "etcd" not in Journal(ctx.state_dir).layers():
            return cls()
        try:
            with EtcdSession(ctx.inventory, ctx.base_dir, timeout=3.0) as session:
                states = session.states()
        except LabctlError as exc:
            return cls(unread=f"the members could not be asked ({exc})")
        if all(s.status is None for s in states):
            return cls(unread="no member answered")
        leader = next((s.name for s in states if s.status and s.status.is_leader), "")
        return cls(tuple((s.name, s.status.version if s.status else "") for s in states), leader)

    def of(self) -> dict[str, str]:
        return dict(self.versions)

    def describe(self) -> str:
        if not self.versions:
            return "no member asked"
        return ", ".join(f"{n} at {v or '(no answer)'}" for n, v in self.versions)


def order(inventory: Inventory, versions: Mapping[str, str], leader: str) -> list[str]:
    """The members an upgrade restarts, in its order: those that do not run the wanted
    version (or did not answer), followers in inventory order, the leader last. Empty
    when no member that answers runs another version (pure)."""
    want = wanted_version(inventory)
    if want is None or not any(v and v != want for v in versions.values()):
        return []
    names = [s.name for s in render.members(inventory) if versions.get(s.name, want) != want]
    return sorted(names, key=lambda name: name == leader)


def chain(inventory: Inventory, versions: Mapping[str, str], leader: str) -> list[str]:
    """Every member the plan passes through, one at a time: those already at the wanted
    version first (checked, not restarted: a run that was killed resumes here), then
    ``order``. Empty when there is no upgrade."""
    todo = order(inventory, versions, leader)
    if not todo:
        return []
    done = [s.name for s in render.members(inventory) if s.name in versions and s.name not in todo]
    return done + todo


def _step(inventory: Inventory, work: str, name: str, detail: str) -> LocalStep:
    want = wanted_version(inventory) or ""
    return LocalStep(work, detail, f"{want}\0{name}", subject=name)


def guard_step(inventory: Inventory, name: str) -> LocalStep:
    return _step(
        inventory,
        UPGRADE,
        name,
        f"before {name} restarts: every other member healthy, leadership moved off {name}",
    )


def upgraded_step(inventory: Inventory, name: str) -> LocalStep:
    want = wanted_version(inventory)
    return _step(
        inventory,
        UPGRADED,
        name,
        f"wait until {name} is healthy at etcd {want} and caught up with the leader",
    )


def cluster_step(inventory: Inventory) -> LocalStep:
    want = wanted_version(inventory) or ""
    return LocalStep(
        CLUSTER_VERSION,
        f"wait until the cluster version is {cluster_version(want)}",
        want,
    )


def upgrade_plan(
    layer: str,
    inventory: Inventory,
    member_actions: Mapping[str, Sequence[Action]],
    members: Sequence[str],
    is_restart: Callable[[Action], bool],
) -> Plan:
    """The members plan of an upgrade: each member's steps (``member_actions``, as the
    layer makes them) with its restart between its guard and its check, member after
    member in ``members``' order (``chain``), then the cluster version.

    The local steps come first in the plan: each guard waits for the member before's
    check, each check for its member's restart. Every node writes its files at once
    (nothing runs them before the restart); only the restarts wait their turn.
    """
    local: list[Step] = []
    guards: dict[str, str] = {}
    previous: tuple[str, ...] = ()
    for name in members:
        guard = guard_step(inventory, name)
        local.append(Step(guard.key, guard, previous))
        guards[name] = guard.key
        restart = next(a for a in member_actions[name] if is_restart(a))
        check = upgraded_step(inventory, name)
        local.append(Step(check.key, check, (restart.key,)))
        previous = (check.key,)
    last = cluster_step(inventory)
    local.append(Step(last.key, last, previous))
    steps: list[Step] = []
    rest = [n for n in member_actions if n not in guards]
    restarts: tuple[str, ...] = previous
    for name in [*members, *rest]:
        for action in member_actions[name]:
            after: tuple[str, ...] = ()
            if is_restart(action):
                # A member outside the chain (none today) restarts after all of it.
                after = (guards[name],) if name in guards else restarts
                if name not in guards:
                    restarts = (action.key,)
            steps.append(Step(action.key, action, after))
    return Plan(layer, (*local, *steps))


# The works --------------------------------------------------------------------------


def _statuses(session: EtcdSession) -> dict[str, EndpointStatus | str]:
    """Each member's status, or why it could not be read."""
    return {
        s.name: s.status if s.status is not None else (s.error or "no answer")
        for s in session.states()
    }


class _MemberWork:
    def __init__(self, name: str) -> None:
        self.name = name

    def _want(self, ctx: LayerContext) -> str:
        want = wanted_version(ctx.inventory)
        if want is None:
            raise LabctlError("etcd: an upgrade needs cluster.etcd.version")
        return want


class GuardWork(_MemberWork):
    """``etcd.upgrade``: before one member restarts, the others must be healthy (bounded
    wait, then a refusal with etcd's reason); a leader hands leadership over first."""

    def apply(self, ctx: LayerContext) -> bool:
        from labctl.etcd.cluster import EtcdSession

        want = self._want(ctx)
        with EtcdSession(ctx.inventory, ctx.base_dir) as session:
            others = [e for e in session.endpoints if e.name != self.name]
            client = session.client()
            end = time.monotonic() + GUARD_WAIT
            while True:
                sick = {e.name: why for e in others if (why := client.healthy(e)) is not None}
                if not sick:
                    break
                if time.monotonic() + 1.0 > end:
                    named = "; ".join(f"{name}: {why}" for name, why in sick.items())
                    raise LabctlError(
                        f"etcd: not restarting {self.name} for the upgrade to {want}: "
                        f"{len(sick)} other member(s) are not healthy, so stopping it could "
                        f"leave the cluster without quorum ({named}); bring them back first"
                    )
                time.sleep(1.0)
            return self._hand_over(session, want)

    def _hand_over(self, session: EtcdSession, want: str) -> bool:
        """Move leadership off this member, if it leads; whether it did."""
        statuses = _statuses(session)
        mine = statuses.get(self.name)
        if mine is None or isinstance(mine, str) or not mine.is_leader:
            return False
        healthy = [
            (name, s)
            for name, s in statuses.items()
            if name != self.name and not isinstance(s, str) and not s.is_learner
        ]
        if not healthy:
            return False  # a one-member cluster: nobody to hand over to
        healthy.sort(key=lambda pair: pair[1].version != want)  # upgraded ones first
        target_name, target = healthy[0]
        endpoint = next(e for e in session.endpoints if e.name == self.name)
        session.client().move_leader(endpoint, target.member_id)
        end = time.monotonic() + 10.0
        while time.monotonic() < end:
            now = _statuses(session).get(self.name)
            if not isinstance(now, str) and now is not None and not now.is_leader:
                return True
            time.sleep(0.2)
        raise DriverTimeout(
            f"etcd: {self.name} still leads 10 s after leadership was handed to {target_name}"
        )

    def observe(self, ctx: LayerContext) -> str | None:
        want = self._want(ctx)
        return f"{self.name} would be restarted at {want} once every other member is healthy"


class UpgradedWork(_MemberWork):
    """``etcd.upgraded``: the restarted member is healthy at the new version and caught up."""

    def apply(self, ctx: LayerContext) -> bool:
        from labctl.etcd.cluster import EtcdSession

        want = self._want(ctx)
        deadline = float(ctx.inventory.cluster.etcd.health_timeout)
        end = time.monotonic() + deadline
        with EtcdSession(ctx.inventory, ctx.base_dir) as session:
            endpoint = next(e for e in session.endpoints if e.name == self.name)
            while True:
                why = self._why_not(session, want, endpoint)
                if why is None:
                    return False  # a check: the restart before it made the change
                if time.monotonic() + 1.0 > end:
                    raise LabctlError(
                        f"etcd: {self.name} is not back at {want} after {deadline:g} s ({why}); "
                        "the members after it were not restarted "
                        "(cluster.etcd.health_timeout)"
                    )
                time.sleep(1.0)

    def _why_not(self, session: EtcdSession, want: str, endpoint: EtcdEndpoint) -> str | None:
        sick = session.client().healthy(endpoint)
        if sick is not None:
            return sick
        statuses = _statuses(session)
        mine = statuses.get(self.name)
        if mine is None or isinstance(mine, str):
            return f"its status cannot be read: {mine}"
        if mine.version != want:
            return f"it runs etcd {mine.version}"
        leader = next(
            (s for s in statuses.values() if not isinstance(s, str) and s.is_leader), None
        )
        if leader is None:
            return "no member leads"
        behind = leader.raft_index - mine.raft_index
        if behind > CATCH_UP:
            return f"it is {behind} raft entries behind the leader"
        return None

    def observe(self, ctx: LayerContext) -> str | None:
        return None  # a check: nothing changes here


class ClusterVersionWork:
    """``etcd.cluster-version``: once every member runs the new version, etcd moves the
    cluster version to its minor; wait for it (bounded)."""

    def apply(self, ctx: LayerContext) -> bool:
        from labctl.etcd.cluster import EtcdSession

        want = wanted_version(ctx.inventory) or ""
        minor = cluster_version(want)
        deadline = float(ctx.inventory.cluster.etcd.health_timeout)
        end = time.monotonic() + deadline
        with EtcdSession(ctx.inventory, ctx.base_dir) as session:
            client = session.client()
            while True:
                seen: dict[str, str] = {}
                for endpoint in session.endpoints:
                    try:
                        seen[endpoint.name] = client.versions(endpoint).cluster or "not decided"
                    except LabctlError as exc:
                        seen[endpoint.name] = f"no answer ({exc})"
                if all(v == minor for v in seen.values()):
                    return False
                if time.monotonic() + 1.0 > end:
                    said = ", ".join(f"{n}: {v}" for n, v in seen.items())
                    raise LabctlError(
                        f"etcd: every member was restarted at {want}, but after {deadline:g} s "
                        f"the cluster version is not {minor} ({said})"
                    )
                time.sleep(1.0)

    def observe(self, ctx: LayerContext) -> str | None:
        want = wanted_version(ctx.inventory) or ""
        return f"the cluster version would move to {cluster_version(want)}"
