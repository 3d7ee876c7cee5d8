"""Restoring the etcd cluster from a snapshot: ``labctl etcd restore``.

A restore is a one-off run, not a layer (it is not in ``LAYERS``, and a
bootstrap never runs it): every member is stopped, its data moved aside (never
deleted) and replaced by one snapshot's, then every member starts once all hold
the restored data, and the cluster must answer healthy (the etcd layer's local
work ``etcd.healthy``). The member's unit, paths and flags are the etcd layer's
own (``render/etcd.py``), so a restored cluster is the one the layer keeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from labctl.data import shell
from labctl.engine.actions import LocalStep, PutFile, Run, ssh_answers
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan, Step
from labctl.render import etcd as render

# The script each member runs: labctl/data/scripts/etcd-restore.sh (its header says
# what its arguments are).
RESTORE = shell.body("etcd-restore")


@dataclass(frozen=True)
class EtcdRestore:
    """Every member's data replaced by one snapshot's, the old data moved aside.

    ``snapshot`` is the file's content and ``restore_id`` names this restore (its
    hash and time): the steps are one-off commands, and the journal must not take
    a second restore of the same file for one already done.
    """

    snapshot: bytes
    restore_id: str
    name: str = "etcd-restore"

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        inventory = ctx.inventory
        etcd = inventory.cluster.etcd
        steps: list[Step] = []
        restored: list[str] = []
        for server in render.members(inventory):
            node = server.name
            data_dir = ctx.on_node(node, render.data_dir(inventory))
            file = ctx.on_node(node, f"/var/lib/labctl/etcd-restore-{self.restore_id}.db")
            argv = restore_argv(ctx, server.name, file, data_dir)
            once = (self.restore_id,)
            restore_step = f"restore:{node}"
            restored.append(restore_step)
            steps += [
                Step(f"wait:{node}", ssh_answers(node, inventory.lab.ssh.boot_wait)),
                Step(
                    f"put:{node}",
                    PutFile(node, file, self.snapshot, 0o600, "root:root", secret=True),
                ),
                Step(
                    f"stop:{node}",
                    Run(node, ("systemctl", "stop", render.UNIT_NAME), triggers=once),
                ),
                Step(
                    restore_step,
                    Run(
                        node,
                        argv,
                        timeout=600.0,
                        triggers=once,
                        what=f"etcdctl snapshot restore into {etcd.data_dir}, old data aside",
                    ),
                ),
            ]
        # No member starts before every member holds the restored data.
        for server in render.members(inventory):
            node = server.name
            start = Run(node, ("systemctl", "start", render.UNIT_NAME), triggers=(self.restore_id,))
            steps.append(Step(f"start:{node}", start, after=tuple(restored)))
        yield Plan("etcd restore: members", tuple(steps))
        yield Plan.of(
            "etcd restore: health",
            [
                LocalStep(
                    "etcd.healthy",
                    f"wait up to {etcd.health_timeout} s for every member to answer healthy",
                    self.restore_id,
                )
            ],
        )


def restore_argv(ctx: LayerContext, name: str, snapshot: str, data_dir: str) -> tuple[str, ...]:
    """Move the member's data aside (never deleted), restore the snapshot in its place
    (etcd-restore.sh; every value one argument of it)."""
    inventory = ctx.inventory
    server = inventory.server(name)
    token = render.cluster_token(inventory)
    restore = [
        "etcdctl", "snapshot", "restore", snapshot,
        "--name", name,
        "--initial-cluster", render.initial_cluster(inventory),
        "--initial-cluster-token", token,
        "--initial-advertise-peer-urls", render.peer_url(inventory, server),
        "--data-dir", data_dir,
    ]  # fmt: skip
    if render.platform_runtime(inventory, ctx.platform) == "container":
        engine = render.container_engine(server)
        parent = data_dir.rsplit("/", 1)[0] or "/"
        restore = [
            engine, "run", "--rm", "--network", "host",
            "--volume", f"{parent}:{parent}", "--volume", f"{snapshot}:{snapshot}:ro",
            "--env", "ETCDCTL_API=3", render.image(inventory),
            "/usr/local/bin/etcdctl", *restore[1:],
        ]  # fmt: skip
    return ("sh", "-c", RESTORE, "labctl-etcd-restore", data_dir, token, snapshot, *restore)
