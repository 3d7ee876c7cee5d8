"""The calico layer's plans for the reference inventory, against reviewed goldens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labctl.engine.actions import LocalStep, PutFile, Run
from labctl.engine.facts import Facts
from labctl.engine.layer import LayerContext
from labctl.etcd.membership import EtcdChanges, EtcdJoined
from labctl.etcd.token import EtcdToken
from labctl.etcd.upgrade import EtcdVersions
from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.layers import LAYERS
from labctl.layers.calico import CalicoLayer
from labctl.sim.platform import SimPlatform
from labctl.sim.render import calico_node
from tests.conftest import REFERENCE, assert_golden

BIRD = "/opt/labctl/bird-1.6.8/usr/sbin/bird"


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return require_inventory(REFERENCE)


def test_simulated_lab_plans_match_golden(inventory: Inventory, tmp_path: Path) -> None:
    ctx = LayerContext(
        inventory,
        REFERENCE,
        tmp_path / "state",
        platform=SimPlatform(calico_bird=BIRD, switches="frr"),
    )
    plans = [plan.as_dict() for plan in CalicoLayer().plans(ctx)]
    assert [p["layer"] for p in plans] == [
        "calico: switches",
        "calico: nodes (BIRD standing in for calico-node)",
        "calico: sessions",
    ]
    assert_golden("plan-calico.json", json.dumps(plans, indent=2) + "\n")


def test_real_lab_configures_only_its_frr_switches(inventory: Inventory, tmp_path: Path) -> None:
    ctx = LayerContext(inventory, REFERENCE, tmp_path / "state")
    plans = list(CalicoLayer().plans(ctx))
    assert [p.layer for p in plans] == ["calico: switches"]
    hosts = {step.action.host for p in plans for step in p.steps}
    assert hosts == {"kek-core"}  # astrid runs EOS, tor IOS: printed, not pushed


def test_bird_unit_runs_the_given_binary_with_calico_nodes_paths() -> None:
    unit = calico_node.unit(BIRD)
    assert f"exec {BIRD} -f -c /etc/calico/confd/config/bird.cfg -s /var/run/calico/bird.ctl" in (
        unit
    )
    assert "sysctl -qw net.ipv4.ip_forward=1" in unit  # as Felix does
    assert calico_node.birdc(BIRD) == "/opt/labctl/bird-1.6.8/usr/sbin/birdc"


def test_frr_config_is_pushed_readable_by_frr_only(inventory: Inventory, tmp_path: Path) -> None:
    ctx = LayerContext(
        inventory, REFERENCE, tmp_path / "state", platform=SimPlatform(switches="frr")
    )
    puts = [
        s.action for p in CalicoLayer().plans(ctx) for s in p.steps if isinstance(s.action, PutFile)
    ]
    assert {(a.host, a.path, a.mode, a.owner) for a in puts} == {
        ("kek-core", "/etc/frr/frr.conf", 0o640, "frr:frr"),
        ("astrid", "/etc/frr/frr.conf", 0o640, "frr:frr"),
    }


def test_calico_sits_between_kubernetes_and_ceph() -> None:
    names = [layer.name for layer in LAYERS]
    assert names.index("calico") == names.index("kubernetes") + 1
    assert isinstance(LAYERS[names.index("calico")], CalicoLayer)


def test_no_remembered_step_shares_a_key_with_another_layers(
    inventory: Inventory, tmp_path: Path
) -> None:
    """The journal remembers a Run by its key: two layers with the same key would make
    each other's converged re-runs act again (a bare `systemctl daemon-reload` did)."""
    ctx = LayerContext(
        inventory,
        REFERENCE,
        tmp_path / "state",
        facts=Facts.of(EtcdToken("sthlm-etcd"), EtcdChanges(), EtcdJoined(), EtcdVersions()),
        platform=SimPlatform(calico_bird=BIRD, switches="frr"),
    )

    def run_keys(layer_name: str) -> set[str]:
        layer = next(x for x in LAYERS if x.name == layer_name)
        return {
            s.action.key for p in layer.plans(ctx) for s in p.steps if isinstance(s.action, Run)
        }

    calico = run_keys("calico")
    for other in ("power", "etcd"):  # pki only pushes files (and needs a minted CA)
        assert calico.isdisjoint(run_keys(other)), other


def test_calico_resources_plans_the_api_work_and_the_ready_wait(
    inventory: Inventory, tmp_path: Path
) -> None:
    from dataclasses import replace

    from labctl.inventory.model import CalicoManifest
    from labctl.layers.calico_resources import CalicoResourcesLayer

    def steps(ctx: LayerContext) -> list[tuple[str, str]]:
        plans = list(CalicoResourcesLayer().plans(ctx))
        assert [p.layer for p in plans] == ["calico-resources: objects"]
        found = []
        for s in plans[0].steps:
            assert isinstance(s.action, LocalStep), s.action
            found.append((s.action.name, s.action.detail))
        return found

    sim = steps(
        LayerContext(inventory, REFERENCE, tmp_path / "s", platform=SimPlatform(calico_bird=BIRD))
    )
    assert [name for name, _ in sim] == ["calico.resources", "calico.nodes-ready"]
    assert "stand-in definitions" in sim[0][1]
    assert "wait up to 60 s" in sim[1][1]
    pinned = CalicoManifest("https://example.invalid/calico.yaml", "c" * 64)
    calico = replace(inventory.cluster.calico, manifest=pinned)
    with_manifest = replace(inventory, cluster=replace(inventory.cluster, calico=calico))
    real = steps(LayerContext(with_manifest, REFERENCE, tmp_path / "m"))
    # A real lab: calico-node pulled and started, then the sessions, as the switches say.
    assert [name for name, _ in real] == [
        "calico.resources",
        "calico.nodes-ready",
        "calico.established",
    ]
    assert real[0][1].startswith("apply https://example.invalid/calico.yaml, then")
    assert "wait up to 600 s" in real[1][1]
    assert "wait up to 39 s" in real[2][1] and "as the switches say" in real[2][1]


def test_a_plan_names_its_bgp_passwords_by_reference_and_holds_no_value(
    inventory: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planning reads no secret (the variables may be set: the plan still holds none);
    each file and the restart that follows it name the same references."""
    import dataclasses

    from labctl.inventory.model import SecretRef

    monkeypatch.setenv("LABCTL_TEST_MESH_KEY", "mesh-value-1")
    monkeypatch.setenv("LABCTL_TEST_KEK_KEY", "kek-value-2")
    calico = inventory.cluster.calico
    peers = tuple(
        dataclasses.replace(p, password=SecretRef(env="LABCTL_TEST_KEK_KEY"))
        if p.switch == "kek-core"
        else p
        for p in calico.peers
    )
    calico = dataclasses.replace(
        calico, peers=peers, mesh_password=SecretRef(env="LABCTL_TEST_MESH_KEY")
    )
    keyed = dataclasses.replace(
        inventory, cluster=dataclasses.replace(inventory.cluster, calico=calico)
    )
    ctx = LayerContext(
        keyed, REFERENCE, tmp_path / "state",
        platform=SimPlatform(calico_bird=BIRD, switches="frr"),
    )  # fmt: skip
    plans = list(CalicoLayer().plans(ctx))
    printed = "".join(p.to_json() + p.render_tree() for p in plans)
    assert "mesh-value-1" not in printed and "kek-value-2" not in printed
    actions = [s.action for p in plans for s in p.steps]

    def named(host: str, kind: type[PutFile] | type[Run]) -> list[str]:
        found = [a for a in actions if a.host == host and isinstance(a, kind) and a.secrets]
        assert len(found) == 1, (host, kind)
        return [u.used_at for u in found[0].secrets]

    kek = ["cluster.calico.peers[0].password"]
    assert named("kek-core", PutFile) == named("kek-core", Run) == kek
    fohn = sorted(named("fohn", PutFile))
    assert fohn == sorted(named("fohn", Run))
    assert fohn == ["cluster.calico.mesh_password", "cluster.calico.peers[0].password"]
    assert not [a for a in actions if a.host == "astrid" and getattr(a, "secrets", None)]
    assert not (tmp_path / "state").exists()  # planning wrote nothing (no salt yet)


def test_a_real_lab_without_a_manifest_is_refused_not_planned(
    inventory: Inventory, tmp_path: Path
) -> None:
    """On main it planned stand-in definitions and no wait: bootstrap said ok while every
    Node stayed NotReady."""
    from labctl.errors import LabctlError
    from labctl.layers.calico_resources import CalicoResourcesLayer

    assert inventory.cluster.calico.manifest is None
    with pytest.raises(LabctlError, match=r"cluster\.calico\.manifest is not set.*LAB120"):
        list(CalicoResourcesLayer().plans(LayerContext(inventory, REFERENCE, tmp_path / "r")))


def test_real_lab_plans_match_golden(inventory: Inventory, tmp_path: Path) -> None:
    """The real lab's calico and calico-resources plans: the switches configured, then
    Calico's manifest, every Node Ready and every switch session Established."""
    from dataclasses import replace

    from labctl.inventory.model import CalicoManifest

    pinned = CalicoManifest("https://example.invalid/calico.yaml", "c" * 64)
    calico = replace(inventory.cluster.calico, manifest=pinned)
    real = replace(inventory, cluster=replace(inventory.cluster, calico=calico))
    ctx = LayerContext(real, REFERENCE, tmp_path / "state")
    plans = [
        plan.as_dict()
        for layer in LAYERS
        if layer.name in ("calico", "calico-resources")
        for plan in layer.plans(ctx)
    ]
    assert [p["layer"] for p in plans] == ["calico: switches", "calico-resources: objects"]
    assert_golden("plan-calico-real.json", json.dumps(plans, indent=2) + "\n")
