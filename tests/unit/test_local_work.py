"""Local work by name, and the same work about one thing: a step's ``subject``."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.engine.actions import LocalStep
from labctl.engine.appliers import LocalApplier
from labctl.engine.layer import LayerContext
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
    applier = LocalApplier(ctx, {"t.work": f"{__name__}:Recorded"})
    SEEN.clear()
    assert applier.apply(LocalStep("t.work", "all", "d"))
    assert applier.apply(LocalStep("t.work", "one", "d", "fohn", subject="fohn"))
    assert SEEN == [(), ("fohn",)]
    assert applier.observe(LocalStep("t.work", "one", "d", subject="wind")) == "would act on wind"
    assert LocalStep("t.work", "one", "d", subject="wind").key == "local:t.work:wind"
    with pytest.raises(LabctlError, match=r"no local work named 't\.other'"):
        applier.apply(LocalStep("t.other", "x", "d", subject="fohn"))


def test_the_os_layer_work_is_registered() -> None:
    from labctl.engine.appliers import LOCAL_WORK

    for name in ("os.survey", "os.boot-start", "os.boot-stop", "os.arm", "os.await-install"):
        module, _, attribute = LOCAL_WORK[name].partition(":")
        assert hasattr(__import__(module, fromlist=[attribute]), attribute)
