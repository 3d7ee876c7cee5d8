"""The etcd layer: a TLS etcd cluster formed from the inventory's etcd members.

Plans, in order. First a snapshot of the running cluster, taken only
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
    facts = (EtcdChanges, EtcdJoined)

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
            "etcd.snapshot": SnapshotWork,
            "etcd.healthy": HealthyWork,
            "etcd.membership": MembershipWork,
            "etcd.add": AddWork,
            "etcd.promote": PromoteWork,
            "etcd.remove": RemoveWork,
            "etcd.left": LeftWork,
        }

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        inventory = ctx.inventory
        etcd = inventory.cluster.etcd
        digest = render.config_digest(
            inventory, render.platform_runtime(ctx.inventory, ctx.platform)
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
        # A dry run did not ask the cluster: it shows every member as a member.
        changes = ctx.fact(EtcdChanges, otherwise=EtcdChanges())
        joined = ctx.fact(EtcdJoined)
        actions = [
            action
            for server in render.members(inventory)
            if server.name not in changes.joining
            for action in member_actions(ctx, server.name, joined.of(server.name))
        ]
        # One member restarts at a time: the next waits for this one's health.
        yield Plan.rolling("etcd: members", actions, is_restart)
        for name in changes.joining:  # one at a time: added, started, promoted
            yield Plan.of("etcd: add " + name, [member_step("etcd.add", name)], makes=(EtcdJoined,))
            started = ctx.fact(EtcdJoined).of(name)
            yield Plan.of("etcd: start " + name, member_actions(ctx, name, started))
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


MEMBER_STEPS = {
    "etcd.add": "add {name} to the cluster as a learner",
    "etcd.promote": "promote {name} once it has caught up with the leader",
    "etcd.remove": "remove {name} from the cluster, if the rest keep quorum",
    "etcd.left": "forget {name}: it has left",
}


def member_step(work: str, name: str) -> LocalStep:
    return LocalStep(work, MEMBER_STEPS[work].format(name=name), name, subject=name)


def member_actions(ctx: LayerContext, node: str, joined: tuple[str, str] | None) -> list[Action]:
    """One member's files and unit, running; ``joined``: how it joined a running cluster.

    A member that joined restarts (and is enabled) again when it is added again
    under a new member id, after it had left.
    """
    inventory = ctx.inventory
    etcd = inventory.cluster.etcd
    token = render.cluster_token(inventory)
    server = inventory.server(node)
    files = render.member_files(
        inventory,
        server,
        render.platform_runtime(ctx.inventory, ctx.platform),
        joined[0] if joined else None,
    )
    data_dir = ctx.on_node(node, render.data_dir(inventory))
    started = (files.restart_digest, *((joined[1],) if joined else ()))
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
        Run(node, ("systemctl", "enable", render.UNIT_NAME), triggers=started[1:]),
        Run(
            node,
            (
                "sh",
                "-c",
                RESTART,
                RESTART_NAME,
                data_dir,
                token,
                render.UNIT_NAME,
                f"https://127.0.0.1:{etcd.client_port}",
                *(ctx.on_node(node, path) for path in render.tls_files(server)),
                str(int(etcd.health_timeout)),
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
