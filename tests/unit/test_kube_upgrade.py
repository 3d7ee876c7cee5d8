"""The rolling Kubernetes upgrade's order, batches and plan shape (pure: no lab).

The "before" these tests pin: on main, a new ``cluster.kubernetes.version`` gave the
nodes plan of ``Plan.rolling`` with every kubelet restarted in parallel, no Node
drained and nothing uncordoned; only the control-plane restarts waited for each
other.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from labctl.engine.actions import LocalStep, Run
from labctl.engine.facts import Facts
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan
from labctl.etcd.membership import EtcdChanges, EtcdJoined
from labctl.etcd.token import EtcdToken
from labctl.etcd.upgrade import EtcdVersions
from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.kubernetes import upgrade
from labctl.kubernetes.upgrade import NodeVersion, RunningNodes
from labctl.labdiff.diff import version_changes, wanted_versions
from labctl.labdiff.running import Observed
from labctl.labdiff.skew import Running
from labctl.layers.kubernetes import KubernetesLayer
from labctl.sim.platform import SimPlatform
from tests.conftest import REFERENCE
from tests.unit.layers.test_pki_plan import _placeholder_store

OLD, NEW = "v1.35.4", "v1.36.3"  # the reference inventory names 1.36.3


def _inventory(tmp_path: Path, batch: int | None = None) -> Path:
    path = tmp_path / "inventory.yaml"
    shutil.copy(REFERENCE, path)
    if batch is not None:
        text = path.read_text().replace(
            "    pod_cidr: 10.188.0.0/16",
            f"    upgrade: {{kubelet_batch: {batch}}}\n    pod_cidr: 10.188.0.0/16",
            1,
        )
        path.write_text(text)
    return path


def _running(**kubelets: str) -> RunningNodes:
    return RunningNodes(tuple(NodeVersion(n, v, False) for n, v in kubelets.items()))


def _nodes_plan(tmp_path: Path, running: RunningNodes, batch: int | None = None) -> Plan:
    path = _inventory(tmp_path, batch)
    ctx = LayerContext(
        require_inventory(path),
        path,
        tmp_path / "state",
        platform=SimPlatform(kube="pods", kube_binaries="/cache/{version}/bin"),
    )
    facts = Facts.of(
        _placeholder_store(ctx),
        EtcdToken("sthlm-etcd"),
        EtcdChanges(),
        EtcdJoined(),
        EtcdVersions(),
        running,
    )
    ctx = dataclasses.replace(ctx, facts=facts)
    return next(p for p in KubernetesLayer().plans(ctx) if p.layer == "kubernetes: nodes")


def _kubelet_restart(plan: Plan, node: str) -> str:
    return next(
        s.id
        for s in plan.steps
        if isinstance(s.action, Run)
        and s.target == node
        and s.action.argv == ("systemctl", "restart", "kubelet.service")
    )


def test_a_version_change_drains_each_node_before_its_kubelet_and_goes_batch_by_batch(
    tmp_path: Path,
) -> None:
    plan = _nodes_plan(tmp_path, _running(fohn=OLD, chequita=OLD, wind=OLD))
    local = [s for s in plan.steps if s.target == "local"]
    # The local steps come first (their target gets a worker first), in the upgrade's order.
    assert plan.steps[: len(local)] == tuple(local)
    assert [
        (s.action.name, s.action.subject) for s in local if isinstance(s.action, LocalStep)
    ] == [
        (upgrade.DRAIN, "fohn"),
        (upgrade.UNCORDON, "fohn"),
        (upgrade.DRAIN, "chequita"),
        (upgrade.UNCORDON, "chequita"),
        (upgrade.DRAIN, "wind"),
        (upgrade.UNCORDON, "wind"),
    ]
    targets = plan.targets()
    for node in ("fohn", "chequita", "wind"):
        steps = targets[node]
        # Nothing on the node moves before it is drained ...
        assert f"local:{upgrade.DRAIN}:{node}" in steps[0].after
        # ... and it is uncordoned after its last step (fohn: its API server ready again).
        uncordon = next(s for s in local if s.id == f"local:{upgrade.UNCORDON}:{node}")
        assert uncordon.after == (steps[-1].id,)
        assert _kubelet_restart(plan, node) in {s.id for s in steps}
    assert "to answer /readyz" in targets["fohn"][-1].action.describe()


def test_batches_follow_kubelet_batch_after_each_control_plane_node_alone(tmp_path: Path) -> None:
    running = {"fohn": OLD, "chequita": OLD, "wind": OLD}
    one = require_inventory(_inventory(tmp_path))
    assert one.cluster.kubernetes.upgrade.kubelet_batch == 1
    assert upgrade.batches(one, running) == [("fohn",), ("chequita",), ("wind",)]
    two = require_inventory(_inventory(tmp_path, batch=2))
    assert upgrade.batches(two, running) == [("fohn",), ("chequita", "wind")]
    # A server that is not a Node yet is not in the order (nothing to drain: it comes up
    # beside the others), and nothing is ordered when every kubelet runs the version.
    assert upgrade.batches(two, {"fohn": OLD, "chequita": OLD}) == [("fohn",), ("chequita",)]
    assert upgrade.batches(two, {"fohn": NEW, "chequita": NEW, "wind": NEW}) == []


def test_a_batch_of_two_drains_both_before_either_is_uncordoned(tmp_path: Path) -> None:
    plan = _nodes_plan(tmp_path, _running(fohn=OLD, chequita=OLD, wind=OLD), batch=2)
    local = [s.id for s in plan.steps if s.target == "local"]
    assert local == [
        f"local:{upgrade.DRAIN}:fohn",
        f"local:{upgrade.UNCORDON}:fohn",
        f"local:{upgrade.DRAIN}:chequita",
        f"local:{upgrade.DRAIN}:wind",
        f"local:{upgrade.UNCORDON}:chequita",
        f"local:{upgrade.UNCORDON}:wind",
    ]


def test_no_version_change_plans_as_before(tmp_path: Path) -> None:
    for running in (_running(fohn=NEW, chequita=NEW, wind=NEW), RunningNodes()):
        plan = _nodes_plan(tmp_path, running)
        assert "local" not in plan.targets()
        # The kubelets restart in parallel: nothing on a worker waits for anyone.
        assert all(not s.after for s in plan.targets()["wind"])


def test_an_interrupted_upgrade_still_uncordons_the_node_it_left_cordoned(tmp_path: Path) -> None:
    # Every kubelet is at the new version, but chequita still carries labctl's cordon.
    left = RunningNodes(
        (
            NodeVersion("fohn", NEW, False),
            NodeVersion("chequita", NEW, True),
            NodeVersion("wind", NEW, False),
        )
    )
    plan = _nodes_plan(tmp_path, left)
    assert f"local:{upgrade.UNCORDON}:chequita" in {s.id for s in plan.steps}


def test_running_nodes_read_from_the_api_answer() -> None:
    items = [
        {"metadata": {"name": "fohn"}, "status": {"nodeInfo": {"kubeletVersion": OLD}}},
        {
            "metadata": {"name": "wind", "annotations": {upgrade.ANNOTATION: "cordoned"}},
            "status": {"nodeInfo": {"kubeletVersion": NEW}},
        },
    ]
    assert RunningNodes.from_api(items).nodes == (
        NodeVersion("fohn", OLD, False),
        NodeVersion("wind", NEW, True),
    )


def test_plan_says_the_node_order_of_an_upgrade(tmp_path: Path) -> None:
    inventory: Inventory = require_inventory(_inventory(tmp_path))
    observed = Observed(
        running=Running(
            api_servers={"https://api:6443": OLD},
            kubelets={"fohn": OLD, "chequita": OLD, "wind": OLD},
        )
    )
    (kube,) = [
        v
        for v in version_changes(wanted_versions(inventory), observed, inventory)
        if v.component == "kubernetes"
    ]
    assert kube.change == "upgrade"
    assert kube.order == (("fohn",), ("chequita",), ("wind",))
    assert kube.line().endswith("upgrade, node by node: fohn, then chequita, then wind")
    assert kube.as_dict()["order"] == [["fohn"], ["chequita"], ["wind"]]


def test_a_new_version_restarts_the_kubelet_where_binary_dir_does_not_name_it(
    tmp_path: Path,
) -> None:
    """A real lab's binary_dir is /opt/bin: the kubelet's files are the same at every
    version, and on main its restart did not follow the binary swapped under it."""
    from labctl.platform import RealPlatform

    def restarts(version: str) -> dict[str, str]:
        path = _inventory(tmp_path)
        path.write_text(path.read_text().replace("version: 1.36.3 ", f"version: {version} ", 1))
        ctx = LayerContext(require_inventory(path), path, tmp_path / "state",
                           platform=RealPlatform())  # fmt: skip
        facts = Facts.of(
            _placeholder_store(ctx),
            EtcdToken("sthlm-etcd"),
            EtcdChanges(),
            EtcdJoined(),
            EtcdVersions(),
            RunningNodes(),
        )
        ctx = dataclasses.replace(ctx, facts=facts)
        plan = next(p for p in KubernetesLayer().plans(ctx) if p.layer == "kubernetes: nodes")
        return {
            s.id: s.action.fingerprint
            for s in plan.steps
            if isinstance(s.action, Run) and s.action.argv[:2] == ("systemctl", "restart")
        }

    old, new = restarts("1.35.4"), restarts("1.36.3")
    changed = sorted(k for k in new if old[k] != new[k])
    assert changed == [f"run:{n}:systemctl restart kubelet.service" for n in
                       ("chequita", "fohn", "wind")]  # fmt: skip
