"""The layers as a graph (engine/graph.py): needs checked, independent layers at once.

Fake layers and a fake applier; whether two layers overlap is proven with a barrier
both must reach (sequential layers never both reach it), not with timing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from labctl.engine.actions import Action, Run
from labctl.engine.appliers import Appliers
from labctl.engine.executor import Options
from labctl.engine.graph import GraphError, check, declared_needs, direct, run_graph, waits_for
from labctl.engine.journal import Journal
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan
from labctl.engine.runner import run_layers
from labctl.inventory import load_inventory
from tests.conftest import REFERENCE

GUARD = 20.0  # seconds: only a failing test ever waits this long


class Applier:
    kinds = ("run",)

    def __init__(self, apply: Callable[[Action], bool]) -> None:
        self._apply = apply

    def apply(self, action: Action) -> bool:
        return self._apply(action)

    def observe(self, action: Action) -> str | None:
        return "cannot be observed here"

    def survey(self, actions: Sequence[Action]) -> Mapping[str, str | None]:
        return {}

    def close(self) -> None:
        pass


def noting_hosts(into: list[str]) -> Callable[[Action], bool]:
    """An apply that notes each action's host in ``into`` and says it changed something."""

    def apply(action: Action) -> bool:
        into.append(action.host)
        return True

    return apply


class Layer:
    """Plans of one Run each, on its own node; ``needs`` None declares nothing."""

    def __init__(self, name: str, needs: tuple[str, ...] | None, plans: int = 1) -> None:
        self.name = name
        if needs is not None:
            self.needs = needs
        self.count = plans

    def plans(self, ctx: object) -> Iterator[Plan]:
        for i in range(self.count):
            yield Plan.of(f"{self.name}: {i}", [Run(f"node-{self.name}", (self.name, str(i)))])


@pytest.fixture
def ctx(tmp_path: Path) -> LayerContext:
    inventory = load_inventory(REFERENCE).inventory
    assert inventory is not None
    return LayerContext(inventory, REFERENCE, tmp_path)


def test_an_unknown_need_a_cycle_and_a_need_later_in_the_order_are_refused() -> None:
    with pytest.raises(GraphError, match="layer b needs 'nope', which is no layer"):
        check(["a", "b"], {"a": (), "b": ("nope",)})
    with pytest.raises(GraphError, match="make a cycle: a -> c -> b -> a"):
        check(["a", "b", "c"], {"a": ("c",), "b": ("a",), "c": ("b",)})
    with pytest.raises(GraphError, match="layer a needs b, which comes after it"):
        check(["a", "b"], {"a": ("b",), "b": ()})
    check(["a", "b"], {"a": ("b",), "b": ()}, ordered=False)  # a run's own order is free


def test_a_cycle_is_refused_before_any_layer_runs(ctx: LayerContext) -> None:
    ran: list[str] = []
    layers = [Layer("a", ("b",)), Layer("b", ("a",))]
    applier = Applier(noting_hosts(ran))
    with pytest.raises(GraphError, match="cycle"):
        run_layers(layers, ctx, Options(), appliers=Appliers([applier]))
    assert ran == []


def test_the_labs_layers_need_what_they_read_and_not_more() -> None:
    from labctl.layers import LAYERS
    from labctl.run import layer_graph

    graph = layer_graph()  # checked: every need a layer, no cycle, each earlier
    assert list(graph) == [layer.name for layer in LAYERS]
    assert direct(graph) == {
        "power": (),
        "os": ("power",),
        "pki": ("os",),
        "etcd": ("pki",),
        "kubernetes": ("etcd",),  # and pki, through etcd
        "calico": ("os",),
        "calico-resources": ("kubernetes", "calico"),
        "ceph": ("pki",),  # and os, through pki
        # pki through kubernetes; its RBAC through the API. Not ceph (the managers'
        # module is the ceph layer's) nor calico-resources (its wait waits for the BGP
        # exporters within its bound), so it runs beside both
        "monitoring": ("kubernetes",),
    }


def test_a_layer_that_declares_nothing_needs_the_one_before_it() -> None:
    needs = declared_needs([Layer("a", None), Layer("b", None), Layer("c", ())])
    assert needs == {"a": (), "b": ("a",), "c": ()}


def test_a_chosen_layer_waits_for_another_through_a_layer_left_out() -> None:
    needs = {"a": (), "b": ("a",), "c": ("b",), "d": ()}
    assert waits_for(list(needs), needs, ["a", "c", "d"]) == {"a": (), "c": ("a",), "d": ()}
    assert waits_for(list(needs), needs, ["c", "d"]) == {"c": (), "d": ()}


def test_each_layer_starts_only_once_all_it_needs_succeeded() -> None:
    needs = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c"), "e": ()}
    ended: list[str] = []
    seen: dict[str, set[str]] = {}
    lock = threading.Lock()

    def run_one(name: str) -> bool:
        with lock:
            seen[name] = set(ended)
        with lock:
            ended.append(name)
        return True

    started = run_graph(list(needs), needs, run_one, workers=3)
    assert sorted(started) == sorted(needs)
    for name, before in seen.items():
        assert set(needs[name]) <= before, f"{name} started before {needs[name]} ended"


def test_independent_layers_run_at_once_and_their_lines_stay_apart(ctx: LayerContext) -> None:
    # b and c need only a; each one's step waits at a barrier for the other's: run one
    # after the other, neither would get past it.
    barrier = threading.Barrier(2, timeout=GUARD)

    def apply(action: Action) -> bool:
        assert isinstance(action, Run)
        if action.argv[0] in ("b", "c") and action.argv[1] == "0":
            barrier.wait()
        return True

    said: list[str] = []
    layers = [Layer("a", ()), Layer("b", ("a",), plans=2), Layer("c", ("a",), plans=2)]
    outcomes = run_layers(
        layers, ctx, Options(), appliers=Appliers([Applier(apply)]), announce=said.append
    )
    assert [(o.name, o.status) for o in outcomes] == [
        ("a", "applied"),
        ("b", "applied"),
        ("c", "applied"),
    ]
    # Each layer's lines together, in bootstrap order, however they interleaved.
    assert [line.split(":")[0] for line in said] == ["a", "b", "b", "c", "c"]


def test_with_one_layer_at_a_time_the_run_is_the_line(ctx: LayerContext) -> None:
    order: list[str] = []
    layers = [Layer("a", ()), Layer("c", ()), Layer("b", ("a",))]
    run_layers(
        layers,
        ctx,
        Options(layers_at_once=1),
        appliers=Appliers([Applier(noting_hosts(order))]),
    )
    assert order == ["node-a", "node-c", "node-b"]


def test_a_failure_stops_the_branch_beside_it_after_its_plan_and_starts_nothing(
    ctx: LayerContext,
) -> None:
    # a fails while b (independent) is inside its first plan; b ends that plan (its step
    # journaled), does not start its second, and c (after b) never starts.
    a_failed = threading.Event()
    b_inside = threading.Event()

    def apply(action: Action) -> bool:
        assert isinstance(action, Run)
        if action.argv[0] == "a":
            assert b_inside.wait(GUARD)
            a_failed.set()
            raise_error()
        if action.argv == ("b", "0"):
            b_inside.set()
            assert a_failed.wait(GUARD)
        return True

    said: list[str] = []
    layers = [Layer("a", ()), Layer("b", (), plans=2), Layer("c", ("b",))]
    outcomes = run_layers(
        layers, ctx, Options(), appliers=Appliers([Applier(apply)]), announce=said.append
    )
    assert [(o.name, o.status, len(o.reports)) for o in outcomes] == [
        ("a", "failed", 1),
        ("b", "stopped", 1),
    ]
    assert "a failed; later layers were not run" in said
    assert "b stopped before b: 1: another layer failed" in said
    journal = Journal(ctx.state_dir)
    assert journal.done(Run("node-b", ("b", "0")).key, Run("node-b", ("b", "0")).fingerprint, "b")


def raise_error() -> None:
    from labctl.errors import LabctlError

    raise LabctlError("layer broke")


def test_plan_shows_what_each_chosen_layer_waits_for(tmp_path: Path) -> None:
    import json

    from tests.labctl_process import run_labctl

    (tmp_path / "inventory.yaml").write_text(REFERENCE.read_text())
    args = ("plan", "pki", "etcd", "ceph", "--state-dir", str(tmp_path / "state"))
    env = {"LABCTL_CA_PASSPHRASE": "graph-test-passphrase"}
    # No lab answers here: the layers' plans may fail; the graph is said first.
    said = run_labctl(*args, "-o", "json", cwd=tmp_path, env=env, timeout=120)
    assert json.loads(said.stdout)["graph"] == {"pki": [], "etcd": ["pki"], "ceph": ["pki"]}
    text = run_labctl(*args, cwd=tmp_path, env=env, timeout=120).stderr.splitlines()
    assert text[:3] == ["graph: pki: first", "graph: etcd: after pki", "graph: ceph: after pki"]


def test_plan_shows_monitoring_beside_ceph(tmp_path: Path) -> None:
    import json

    from tests.labctl_process import run_labctl

    (tmp_path / "inventory.yaml").write_text(REFERENCE.read_text())
    args = ("plan", "ceph", "monitoring", "--state-dir", str(tmp_path / "state"))
    env = {"LABCTL_CA_PASSPHRASE": "graph-test-passphrase"}
    said = run_labctl(*args, "-o", "json", cwd=tmp_path, env=env, timeout=120)
    assert json.loads(said.stdout)["graph"] == {"ceph": [], "monitoring": []}
    text = run_labctl(*args, cwd=tmp_path, env=env, timeout=120).stderr.splitlines()
    assert text[:2] == ["graph: ceph: first", "graph: monitoring: first"]
