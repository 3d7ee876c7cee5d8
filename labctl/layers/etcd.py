"""The etcd layer: a TLS etcd cluster formed from the inventory's etcd members.

Plans, in order. First the cluster's token (local work ``etcd.token``,
``etcd/token.py``): the one kept in the state directory, else the running
members', else, when no member holds etcd data, a new one for the new cluster,
recorded before any member uses it. Then a snapshot of the running cluster, taken only
when this run is about to change its members' configuration (local work
``etcd.snapshot``; a cluster not formed yet has nothing to lose). Then, on
every member: the data directory is checked on every run to hold no other
cluster's data (such a member is refused and its data left alone: labctl never
wipes it), the environment and unit are written (``render/etcd.py``), and the
unit is enabled, restarted when its files changed (the data directory marked
as this cluster's first), and started if it is not running. Last, from the
operator's machine with labctl's own client certificate, every member must
answer healthy within ``health_timeout``, and the cluster is verified: every
member listed, one leader (local work ``etcd.healthy``).

Between the snapshot and the members, ``etcd.membership`` compares the live
cluster with the inventory (``etcd/membership.py``; the layer reads what it
found as the facts ``EtcdChanges`` and ``EtcdJoined``). Members that join a
running cluster are left out of the members plan and get three plans each,
one member at a time: added as a learner, started with ``existing`` and the
membership recorded when it was added, promoted once caught up. Members the
inventory dropped are removed, one at a time, then stopped on their node with
their data moved aside. Every change step keeps quorum or refuses.

On the host runtime at another version than the default, a plan before the members
puts that version's etcd and etcdctl on every member from this machine's build
(``etcd/binaries.py``), so a restart runs the new binary. When a member that answers
runs another etcd version than the inventory's, the members plan is the rolling
upgrade of ``etcd/upgrade.py``: one member at a time, followers first and the leader
last (leadership handed over first), each only while every other member is healthy,
and checked back at the new version and caught up before the next; then the cluster
version. (Before it, a version change restarted the members in inventory order, each
checked only for its own health.)

A restore from a snapshot (``labctl etcd restore``) is a one-off run, not a
layer: ``etcd/restore.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from labctl.data import shell
from labctl.engine.actions import Action, Check, LocalStep, PutFile, Run, WaitFor, ssh_answers
from labctl.engine.appliers import LocalWorkFactory
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan
from labctl.etcd import binaries, upgrade
from labctl.etcd import token as tokens
from labctl.etcd.membership import EtcdChanges, EtcdJoined
from labctl.render import etcd as render

# The scripts the plans run on nodes: labctl/data/scripts/NAME.sh (its header says
# why it exists and what its arguments are).
GUARD = shell.body("etcd-guard")
MOVED_GUARD = shell.body("etcd-moved-guard")
RESTART = shell.body("etcd-restart")
LEAVE = shell.body("etcd-leave")

# Started if it is not running; the wait ends once it runs (restarts come from the
# journal, which cannot see a member that died since).
ENSURE_RUNNING = (
    f"systemctl is-active -q {render.UNIT_NAME} || "
    f"{{ systemctl start {render.UNIT_NAME}; systemctl is-active -q {render.UNIT_NAME}; }}"
)


class EtcdLayer:
    name = "etcd"
    needs = ("pki",)  # the members' certificates
    facts = (tokens.EtcdToken, EtcdChanges, EtcdJoined, upgrade.EtcdVersions)

    def local_work(self) -> Mapping[str, LocalWorkFactory]:
        """The work of the ``LocalStep``s this layer's plans hold, by step name."""
        from labctl.etcd.work import (
            AddWork,
            HealthyWork,
            LeftWork,
            MembershipWork,
            PromoteWork,
            RemoveWork,
            SnapshotWork,
        )

        return {
            tokens.TOKEN: tokens.TokenWork,
            tokens.RESTORE_TOKEN: tokens.RestoreTokenWork,
            "etcd.snapshot": SnapshotWork,
            binaries.BINARIES: binaries.BinariesWork,
            "etcd.healthy": HealthyWork,
            "etcd.membership": MembershipWork,
            "etcd.add": AddWork,
            "etcd.promote": PromoteWork,
            "etcd.remove": RemoveWork,
            "etcd.left": LeftWork,
            upgrade.UPGRADE: upgrade.GuardWork,
            upgrade.UPGRADED: upgrade.UpgradedWork,
            upgrade.CLUSTER_VERSION: upgrade.ClusterVersionWork,
        }

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        inventory = ctx.inventory
        etcd = inventory.cluster.etcd
        yield Plan.of(
            "etcd: token",
            [LocalStep(tokens.TOKEN, TOKEN_DETAIL, inventory.cluster.name)],
            makes=(tokens.EtcdToken,),
        )
        token = tokens.token_of(ctx)
        digest = render.config_digest(
            inventory, render.platform_runtime(ctx.inventory, ctx.platform), token
        )
        yield Plan.of(
            "etcd: snapshot",
            [LocalStep("etcd.snapshot", "snapshot the cluster if this run changes it", digest)],
        )
        yield Plan.of(
            "etcd: membership",
            [LocalStep("etcd.membership", "compare the live members with the inventory", digest)],
            makes=(EtcdChanges,),
        )
        # The host runtime at another version: its etcd on every member before any restart.
        binaries_step = binaries.step(ctx)
        if binaries_step is not None:
            yield Plan.of("etcd: binaries", [binaries_step])
        # A dry run did not ask the cluster: it shows every member as a member.
        changes = ctx.fact(EtcdChanges, otherwise=EtcdChanges())
        joined = ctx.fact(EtcdJoined)
        per_member = {
            server.name: member_actions(ctx, server.name, joined.of(server.name), token)
            for server in render.members(inventory)
            if server.name not in changes.joining
        }
        running = ctx.fact(upgrade.EtcdVersions)
        order = [
            name
            for name in upgrade.chain(inventory, running.of(), running.leader)
            if name in per_member
        ]
        if order:  # a version change: member by member, behind the guard
            yield upgrade.upgrade_plan("etcd: members", inventory, per_member, order, is_restart)
        else:  # one member restarts at a time: the next waits for this one's health
            actions = [action for found in per_member.values() for action in found]
            yield Plan.rolling("etcd: members", actions, is_restart)
        for name in changes.joining:  # one at a time: added, started, promoted
            yield Plan.of("etcd: add " + name, [member_step("etcd.add", name)], makes=(EtcdJoined,))
            started = ctx.fact(EtcdJoined).of(name)
            yield Plan.of("etcd: start " + name, member_actions(ctx, name, started, token))
            yield Plan.of("etcd: promote " + name, [member_step("etcd.promote", name)])
        for name, member_id in changes.leaving:  # one at a time: removed, stopped
            yield Plan.of("etcd: remove " + name, [member_step("etcd.remove", name)])
            if any(s.name == name for s in inventory.servers):
                yield Plan.of("etcd: stop " + name, leave_actions(ctx, name, member_id))
            yield Plan.of(
                "etcd: forget " + name,
                [member_step("etcd.left", name)],
                makes=(EtcdChanges, EtcdJoined),
            )
        yield Plan.of(
            "etcd: health",
            [
                LocalStep(
                    "etcd.healthy",
                    f"wait up to {etcd.health_timeout} s for every member to answer healthy",
                    digest,
                )
            ],
        )


TOKEN_DETAIL = (
    "keep the cluster's token: the recorded one, else the running members'; "
    "a new one when no member holds etcd data"
)

MEMBER_STEPS = {
    "etcd.add": "add {name} to the cluster as a learner",
    "etcd.promote": "promote {name} once it has caught up with the leader",
    "etcd.remove": "remove {name} from the cluster, if the rest keep quorum",
    "etcd.left": "forget {name}: it has left",
}


def member_step(work: str, name: str) -> LocalStep:
    return LocalStep(work, MEMBER_STEPS[work].format(name=name), name, subject=name)


def member_actions(
    ctx: LayerContext, node: str, joined: tuple[str, str] | None, token: str
) -> list[Action]:
    """One member's files and unit, running; ``joined``: how it joined a running cluster;
    ``token``: the cluster's (``etcd/token.py``).

    A member that joined restarts (and is enabled) again when it is added again
    under a new member id, after it had left.
    """
    inventory = ctx.inventory
    etcd = inventory.cluster.etcd
    server = inventory.server(node)
    files = render.member_files(
        inventory,
        server,
        render.platform_runtime(ctx.inventory, ctx.platform),
        token,
        joined[0] if joined else None,
    )
    data_dir = ctx.on_node(node, render.data_dir(inventory))
    runtime = render.platform_runtime(ctx.inventory, ctx.platform)
    want = upgrade.wanted_version(inventory) or ""
    # The host runtime's files name no version: the version itself triggers its restart.
    version = (want,) if runtime == "host" and want else ()
    started = (files.restart_digest, *version, *((joined[1],) if joined else ()))
    written = (ctx.on_node(node, render.ENV_PATH), ctx.on_node(node, render.UNIT_PATH))
    return [
        ssh_answers(node, inventory.lab.ssh.boot_wait),
        Check(
            node,
            ("sh", "-c", GUARD, "labctl-etcd-guard", data_dir, token),
            what=f"that {etcd.data_dir} holds no other cluster's data",
        ),
        Check(
            node,
            (
                "sh",
                "-c",
                MOVED_GUARD,
                "labctl-etcd-moved",
                ctx.on_node(node, render.ENV_PATH),
                ctx.on_node(node, ""),
                etcd.data_dir,
            ),
            what=f"that etcd's data was not left behind outside {etcd.data_dir}",
        ),
        PutFile(node, ctx.on_node(node, render.ENV_PATH), files.env.encode(), 0o644),
        PutFile(node, ctx.on_node(node, render.UNIT_PATH), files.unit.encode(), 0o644),
        Run(node, ("systemctl", "daemon-reload"), triggers=(files.restart_digest,)),
        Run(node, ("systemctl", "enable", render.UNIT_NAME), triggers=started[1 + len(version) :]),
        *(ctx.platform.etcd_images(ctx, server) if runtime == "container" else ()),
        Run(
            node,
            (
                "sh",
                "-c",
                RESTART,
                RESTART_NAME,
                data_dir,  # the token is the environment file's (a start-up-only line)
                render.UNIT_NAME,
                f"https://127.0.0.1:{etcd.client_port}",
                *(ctx.on_node(node, path) for path in render.tls_files(server)),
                str(int(etcd.health_timeout)),
                want,
                *written,
            ),
            triggers=started,
            timeout=etcd.health_timeout + 30.0,
            what=f"systemctl restart {render.UNIT_NAME}, then wait until it is healthy again",
        ),
        WaitFor(
            node,
            ("sh", "-c", ENSURE_RUNNING),
            deadline=30.0,
            what=f"{render.UNIT_NAME} to be running",
        ),
    ]


RESTART_NAME = "labctl-etcd-restart"


def is_restart(action: Action) -> bool:
    return isinstance(action, Run) and action.argv[3:4] == (RESTART_NAME,)


def leave_actions(ctx: LayerContext, node: str, member_id: str) -> list[Action]:
    """A removed member's node: unit stopped and disabled, data moved aside (kept)."""
    inventory = ctx.inventory
    data_dir = ctx.on_node(node, render.data_dir(inventory))
    return [
        ssh_answers(node, inventory.lab.ssh.boot_wait),
        Run(
            node,
            ("sh", "-c", LEAVE, "labctl-etcd-leave", data_dir, render.UNIT_NAME),
            triggers=(member_id,),
            what=f"stop {render.UNIT_NAME}, move {inventory.cluster.etcd.data_dir} aside",
        ),
    ]
