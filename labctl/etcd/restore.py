"""Restoring the etcd cluster from a snapshot: ``labctl etcd restore``.

A restore is a one-off run, not a layer (it is not in ``LAYERS``, and a
bootstrap never runs it): every member is stopped, its data moved aside (never
deleted) and replaced by one snapshot's, then every member starts once all hold
the restored data, and the cluster must answer healthy (the etcd layer's local
work ``etcd.healthy``). The member's unit, paths and flags are the etcd layer's
own (``render/etcd.py``), so a restored cluster is the one the layer keeps.

A restored cluster is a new formation: ``etcdctl snapshot restore`` makes the
cluster and member ids from the token and the peer URLs, so the restore first
chooses a new token and records it (local work ``etcd.restore-token``,
``etcd/token.py``) before any member is touched, and every member is restored
with it; the next bootstrap writes it into the members' environment files (a
start-up-only line, which the layer's restart step neither carries nor restarts for:
nothing restarts). A restore stopped half-way is run again
(it restores every member again, with a new token).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from labctl.data import shell
from labctl.engine.actions import LocalStep, PutFile, Run, ssh_answers
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan, Step
from labctl.errors import LabctlError
from labctl.etcd import token as tokens
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
    facts = (tokens.EtcdToken,)

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        inventory = ctx.inventory
        etcd = inventory.cluster.etcd
        yield Plan.of(
            "etcd restore: token",
            [
                LocalStep(
                    tokens.RESTORE_TOKEN,
                    "choose a new token: the restored cluster is a new one",
                    self.restore_id,
                    subject=self.restore_id,
                )
            ],
            makes=(tokens.EtcdToken,),
        )
        token = self.token(ctx)
        steps: list[Step] = []
        restored: list[str] = []
        for server in render.members(inventory):
            node = server.name
            data_dir = ctx.on_node(node, render.data_dir(inventory))
            file = ctx.on_node(node, f"/var/lib/labctl/etcd-restore-{self.restore_id}.db")
            argv = restore_argv(ctx, server.name, file, data_dir, token)
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

    def token(self, ctx: LayerContext) -> str:
        """The token this restore chose (a dry run, which chose none: a stand-in)."""
        found = ctx.fact(tokens.EtcdToken, otherwise=NEW)
        if found.restore == self.restore_id:
            return found.token
        if ctx.dry_run:
            return NEW.token
        raise LabctlError(f"etcd restore {self.restore_id}: its new token was not recorded")


# What a dry run of a restore shows where the new token goes (it chooses none).
NEW = tokens.EtcdToken("NEW-TOKEN")


def restore_argv(
    ctx: LayerContext, name: str, snapshot: str, data_dir: str, token: str
) -> tuple[str, ...]:
    """Move the member's data aside (never deleted), restore the snapshot in its place
    with the restored cluster's ``token`` (etcd-restore.sh; every value one argument
    of it)."""
    inventory = ctx.inventory
    server = inventory.server(name)
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
