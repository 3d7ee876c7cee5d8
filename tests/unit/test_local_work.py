"""Local work by name, and the same work about one thing: a step's ``subject``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from labctl.engine.actions import LocalStep
from labctl.engine.appliers import LocalApplier, LocalWorkFactory
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan
from labctl.errors import LabctlError
from labctl.inventory import require_inventory
from tests.conftest import REFERENCE

SEEN: list[tuple[str, ...]] = []


class Recorded:
    def __init__(self, *args: str) -> None:
        self.args = args

    def apply(self, ctx: LayerContext) -> bool:
        SEEN.append(self.args)
        return True

    def observe(self, ctx: LayerContext) -> str | None:
        return f"would act on {', '.join(self.args) or 'everything'}"


def test_a_step_with_a_subject_builds_the_work_for_it(tmp_path: Path) -> None:
    ctx = LayerContext(require_inventory(REFERENCE), REFERENCE, tmp_path)
    applier = LocalApplier(ctx, {"t.work": Recorded})
    SEEN.clear()
    assert applier.apply(LocalStep("t.work", "all", "d"))
    assert applier.apply(LocalStep("t.work", "one", "d", "fohn", subject="fohn"))
    assert SEEN == [(), ("fohn",)]
    assert applier.observe(LocalStep("t.work", "one", "d", subject="wind")) == "would act on wind"
    assert LocalStep("t.work", "one", "d", subject="wind").key == "local:t.work:wind"
    with pytest.raises(LabctlError, match=r"no local work named 't\.other'"):
        applier.apply(LocalStep("t.other", "x", "d", subject="fohn"))


def test_every_local_step_a_layer_plans_has_its_work_declared() -> None:
    """Each layer declares the work of the LocalSteps it emits; the run finds all 26."""
    from labctl.run import DeclaredWork, run_layer_set

    works = DeclaredWork(run_layer_set([]))
    assert {"os.survey", "os.arm", "os.await-install", "pki.mint", "etcd.promote"} <= set(works)
    assert {"kubernetes.binaries", "calico.resources", "ceph.keys"} <= set(works)
    assert {"monitoring.rbac", "monitoring.targets"} <= set(works)
    assert {"etcd.upgrade", "etcd.upgraded", "etcd.cluster-version"} <= set(works)
    assert "etcd.binaries" in works  # the host runtime's etcd of the version, onto the members
    assert {"etcd.token", "etcd.restore-token"} <= set(works)  # the cluster's token
    assert len(works) == 34


def test_two_layers_may_not_declare_one_step_name_for_different_work() -> None:
    from labctl.run import DeclaredWork

    class One:
        name = "one"

        def plans(self, ctx: LayerContext) -> Iterator[Plan]:
            return iter(())

        def local_work(self) -> Mapping[str, LocalWorkFactory]:
            return {"t.work": Recorded}

    class Other(One):
        name = "other"

        def local_work(self) -> Mapping[str, LocalWorkFactory]:
            return {"t.work": lambda: Recorded("other")}

    assert DeclaredWork([One(), One()])["t.work"] is Recorded  # the same work twice is fine
    with pytest.raises(ValueError, match=r"one and other both declare t\.work"):
        DeclaredWork([One(), Other()])["t.work"]
