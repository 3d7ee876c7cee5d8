"""The kubernetes layer's plans for the reference inventory, against reviewed goldens.

The fact ``PkiFiles`` is gathered from a store holding a placeholder for every
PKI file (its own name), as in the pki layer's golden test, so the restart
triggers (which follow the certificates) are the same on every run.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from labctl.engine.actions import Action, LocalStep, PutFile, Run, WaitFor
from labctl.engine.facts import FactPending, Facts
from labctl.engine.layer import LayerContext, Platform
from labctl.etcd.membership import EtcdChanges, EtcdJoined
from labctl.etcd.token import EtcdToken
from labctl.etcd.upgrade import EtcdVersions
from labctl.inventory import require_inventory
from labctl.kubernetes.upgrade import RunningNodes
from labctl.layers import LAYERS
from labctl.layers.kubernetes import KubernetesLayer
from labctl.pki.facts import PkiFiles
from labctl.pki.placement import NodeFile
from labctl.platform import RealPlatform
from labctl.render.kubernetes import addons
from labctl.sim.platform import SimPlatform
from tests.conftest import REFERENCE, assert_golden
from tests.unit.layers.test_pki_plan import _placeholder_store

QUIET_ETCD = (EtcdToken("sthlm-etcd"), EtcdChanges(), EtcdJoined(), EtcdVersions(), RunningNodes())


def rotate(f: NodeFile) -> NodeFile:
    return dataclasses.replace(f, content=b"a new certificate\n")


def _ctx(
    tmp_path: Path,
    kube_runtime: str | None = None,
    kube_bin_dir: str | None = None,
    platform: Platform | None = None,
) -> LayerContext:
    """A context on the simulated platform with those stand-ins (``platform`` instead
    when given)."""
    inventory_path = tmp_path / "inventory.yaml"
    shutil.copy(REFERENCE, inventory_path)
    ctx = LayerContext(
        require_inventory(inventory_path),
        inventory_path,
        tmp_path / "state",
        platform=platform or SimPlatform(kube=kube_runtime, kube_binaries=kube_bin_dir),
    )
    return dataclasses.replace(ctx, facts=Facts.of(_placeholder_store(ctx), *QUIET_ETCD))


@pytest.mark.parametrize("runtime", ["static-pods", "host", "pods"])
def test_kubernetes_plans_match_golden(tmp_path: Path, runtime: str) -> None:
    # The pods runtime takes its images from the build cache beside the binaries. The
    # static-pods plan is a real lab's (the inventory's runtime); host and pods are the
    # simulated lab's, whose nodes share one kernel.
    bin_dir = "/cache/{version}/bin" if runtime == "pods" else None
    real = RealPlatform() if runtime == "static-pods" else None
    ctx = _ctx(tmp_path, kube_runtime=runtime, kube_bin_dir=bin_dir, platform=real)
    plans = [plan.as_dict() for plan in KubernetesLayer().plans(ctx)]
    assert [p["layer"] for p in plans] == [
        "kubernetes: binaries",
        "kubernetes: nodes",
        "kubernetes: api",
        "kubernetes: addons",
        "kubernetes: registered",
    ]
    assert_golden(f"plan-kubernetes-{runtime}.json", json.dumps(plans, indent=2) + "\n")


def test_the_layer_takes_its_place_in_the_bootstrap_order() -> None:
    names = [layer.name for layer in LAYERS]
    assert names.index("kubernetes") == names.index("etcd") + 1
    assert isinstance(LAYERS[names.index("kubernetes")], KubernetesLayer)


def _actions(ctx: LayerContext) -> list[Action]:
    """The node plan's actions (the one after the binaries)."""
    plan = next(p for p in KubernetesLayer().plans(ctx) if p.layer == "kubernetes: nodes")
    return [step.action for step in plan.steps]


def test_a_rotation_restarts_every_service_on_the_node(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, kube_runtime="host")
    before = {a.key: a.fingerprint for a in _actions(ctx) if isinstance(a, Run)}
    pki = ctx.fact(PkiFiles)
    rotated = PkiFiles(
        tuple(
            (node, tuple(rotate(f) if f.path.endswith("/apiserver.pem") else f for f in files))
            for node, files in pki.files
        )
    )
    assert rotated != pki
    after_ctx = dataclasses.replace(ctx, facts=Facts.of(rotated, RunningNodes()))
    after = {a.key: a.fingerprint for a in _actions(after_ctx) if isinstance(a, Run)}
    changed = sorted(k.split(":", 2)[2] for k in before if before[k] != after[k])
    # fohn holds the API certificate: its services restart; the other nodes' do not.
    assert "systemctl restart kube-apiserver.service" in changed
    assert all(k.startswith("run:fohn:") for k in before if before[k] != after[k])


def test_binaries_come_from_the_given_folder_with_the_version_in_its_name(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, kube_runtime="host", kube_bin_dir="/cache/{version}/bin")
    first = next(iter(KubernetesLayer().plans(ctx)))
    assert first.layer == "kubernetes: binaries"
    (step,) = first.steps
    assert isinstance(step.action, LocalStep)
    assert step.action.name == "kubernetes.binaries"
    assert step.action.describe() == (
        "Kubernetes v1.36.3 in /cache/v1.36.3/bin on fohn (kube-apiserver,"
        " kube-controller-manager, kube-scheduler, kubelet), chequita (kubelet), wind (kubelet)"
    )
    units = [a for a in _actions(ctx) if isinstance(a, PutFile) and a.path.endswith(".service")]
    assert any(b"/cache/v1.36.3/bin/kube-apiserver " in u.content for u in units)
    # Static pods carry the control plane in images: fohn needs only its kubelet then.
    pods = _ctx(tmp_path, kube_runtime="pods", kube_bin_dir="/cache/{version}/bin")
    (step,) = next(iter(KubernetesLayer().plans(pods))).steps
    assert "fohn (kubelet), chequita (kubelet)" in step.action.describe()


def test_dry_run_without_a_pki_plans_without_certificate_digests(tmp_path: Path) -> None:
    inventory_path = tmp_path / "inventory.yaml"
    shutil.copy(REFERENCE, inventory_path)
    ctx = LayerContext(
        require_inventory(inventory_path), inventory_path, tmp_path / "state", dry_run=True
    )
    ctx.facts.gather([PkiFiles, RunningNodes], ctx)  # no store: pending; no Node yet
    assert len(list(KubernetesLayer().plans(ctx))) == 5
    (said,) = ctx.facts.take_assumed()
    assert said.startswith("planned as if there were no PKI yet")
    # A real run does not plan without the certificates: it says which plan makes them.
    real = dataclasses.replace(ctx, dry_run=False)
    with pytest.raises(FactPending, match=r"no CA in the PKI store yet.*pki: mint makes it"):
        list(KubernetesLayer().plans(real))


def test_no_remembered_step_shares_its_key_with_the_etcd_layers(tmp_path: Path) -> None:
    """The journal remembers a Run by its key: a key both layers use with different
    triggers would make each layer's re-run undo the other's, and neither converge."""
    from labctl.layers.etcd import EtcdLayer

    ctx = _ctx(tmp_path, kube_runtime="host")
    kube = {a.key for a in _actions(ctx) if isinstance(a, Run)}
    etcd = {
        step.action.key
        for plan in EtcdLayer().plans(ctx)
        for step in plan.steps
        if isinstance(step.action, Run)
    }
    assert kube & etcd == set()


def test_the_pods_runtime_imports_images_before_the_kubelet_starts(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, kube_runtime="pods", kube_bin_dir="/cache/{version}/bin")
    actions = _actions(ctx)
    (daemonset,) = [d for d in addons.kube_proxy(ctx.inventory) if d["kind"] == "DaemonSet"]
    (container,) = daemonset["spec"]["template"]["spec"]["containers"]
    proxy_image = container["image"]
    assert proxy_image == "registry.k8s.io/kube-proxy:v1.36.3"
    assert container["imagePullPolicy"] == "IfNotPresent"
    for node in ("fohn", "chequita", "wind"):
        runs = [a for a in actions if isinstance(a, Run) and a.host == node]
        described = [a.describe() for a in runs]
        imports = [i for i, d in enumerate(described) if "into containerd" in d]
        kubelet = described.index("run systemctl restart kubelet.service (its files or "
                                  "certificates changed)")  # fmt: skip
        containerd = described.index("run systemctl restart labctl-containerd.service (its "
                                     "files or certificates changed)")  # fmt: skip
        assert len(imports) == 1 and containerd < imports[0] < kubelet
        argv = runs[imports[0]].argv
        assert argv[4] == "/cache/v1.36.3/images"
        # Every node runs pods (the sandbox image); only fohn the control plane's.
        assert "pause.tar=registry.k8s.io/pause:3.10.2" in argv
        # kube-proxy's DaemonSet runs everywhere, under the name its render gives it.
        assert f"kube-proxy.tar={proxy_image}" in argv
        assert ("kube-apiserver.tar=registry.k8s.io/kube-apiserver:v1.36.3" in argv) == (
            node == "fohn"
        )
    # The control plane is static pods: no kube-apiserver unit is written or started.
    assert not any("kube-apiserver.service" in a.describe() for a in actions)


def test_ready_timeout_bounds_the_layers_waits(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, kube_runtime="pods", kube_bin_dir="/cache/{version}/bin")
    text = ctx.inventory_path.read_text().replace(
        "    service_cidr: 10.189.0.0/16",
        "    service_cidr: 10.189.0.0/16\n    ready_timeout: 42",
        1,
    )
    ctx.inventory_path.write_text(text)
    ctx = dataclasses.replace(ctx, inventory=require_inventory(ctx.inventory_path))
    assert ctx.inventory.cluster.kubernetes.ready_timeout == 42.0
    waits = [a for a in _actions(ctx) if isinstance(a, WaitFor) and "certificate" in a.what]
    assert [(w.host, w.deadline) for w in waits] == [("fohn", 42.0)]
    # Unset, it is 300 s as before.
    assert require_inventory(REFERENCE).cluster.kubernetes.ready_timeout == 300.0


@pytest.mark.parametrize("runtime", ["static-pods", "host", "pods"])
def test_control_plane_nodes_change_one_at_a_time(tmp_path: Path, runtime: str) -> None:
    """With chequita a second control-plane node, its disruptive steps wait until fohn's
    API server is ready again; the other steps of both nodes run in parallel."""
    text = REFERENCE.read_text().replace(
        "roles: [etcd, worker, ceph-mon, ceph-osd, ceph-mds]",
        "roles: [etcd, control-plane, worker, ceph-mon, ceph-osd, ceph-mds]",
        1,  # chequita's line comes before wind's
    )
    inventory_path = tmp_path / "inventory.yaml"
    inventory_path.write_text(text)
    ctx = LayerContext(
        require_inventory(inventory_path),
        inventory_path,
        tmp_path / "state",
        platform=SimPlatform(kube=runtime, kube_binaries="/cache/{version}/bin"),
    )
    ctx = dataclasses.replace(ctx, facts=Facts.of(_placeholder_store(ctx), RunningNodes()))
    assert [s.name for s in ctx.inventory.with_role("control-plane")] == ["fohn", "chequita"]
    plan = next(p for p in KubernetesLayer().plans(ctx) if p.layer == "kubernetes: nodes")
    by_host = plan.targets()
    fohn_ready = next(s for s in by_host["fohn"] if "to answer /readyz" in s.action.describe())
    gated = [s for s in by_host["chequita"] if s.after]
    assert gated, "nothing on chequita waits for fohn"
    first = gated[0]
    assert first.after == (fohn_ready.id,)
    # What waits is what replaces a control-plane component: a manifest or a unit restart.
    if runtime == "host":
        assert first.action.describe().startswith("run systemctl restart kube-apiserver")
    else:
        assert isinstance(first.action, PutFile)
        assert first.action.path == "/etc/kubernetes/manifests/kube-apiserver.yaml"
    # Everything on chequita before it (SSH, its kubelet's files) does not wait.
    assert all(not s.after for s in by_host["chequita"][: by_host["chequita"].index(first)])
    # wind, a worker, waits for nobody.
    assert all(not s.after for s in by_host["wind"])
