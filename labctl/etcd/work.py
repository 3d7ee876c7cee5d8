"""The etcd layer's local work: a snapshot before a change, and the cluster's health after.

``etcd.snapshot`` compares the members' configuration about to be applied with
the one recorded at the last run (``snapshots.py``): unchanged, it does
nothing; changed, it snapshots the running cluster first (a cluster not formed
yet has nothing to lose, so it only records the configuration). ``etcd.healthy``
waits until every member answers healthy and then verifies the cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labctl.errors import LabctlError
from labctl.etcd.session import EtcdSession
from labctl.etcd.snapshots import SnapshotIndex
from labctl.render import etcd as render

if TYPE_CHECKING:
    from labctl.engine.layer import LayerContext


def _digest(ctx: LayerContext) -> str:
    return render.config_digest(ctx.inventory, render.runtime(ctx.inventory, ctx.etcd_runtime))


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
