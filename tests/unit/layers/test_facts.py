"""Facts between plans (engine/facts.py): gathered by the runner, read by layers, one dry-run rule.

A fact a layer names is gathered when first read, once per run, and again only
after a plan that makes it is applied (a dry run: once); the counts are taken
through the real runner and local applier; a pending fact ends a dry
run's layer with one line (or is planned around, said once), and fails a real
run with the same words. And no layer reads the operator's disk itself.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import pytest

from labctl.engine.actions import LocalStep, Run
from labctl.engine.appliers import Appliers, LocalApplier
from labctl.engine.executor import Options
from labctl.engine.facts import FactPending, Facts
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan
from labctl.engine.runner import run_layers
from labctl.errors import LabctlError
from labctl.inventory import require_inventory
from tests.conftest import REFERENCE, ROOT
from tests.unit.test_engine import FakeApplier


@dataclass(frozen=True)
class Count:
    """A fact read from a file in the state directory, made by the plan ``count: make``."""

    value: int

    @classmethod
    def gather(cls, ctx: LayerContext) -> Self:
        path = ctx.state_dir / "count"
        if not path.exists():
            raise FactPending("no count yet", "count: make")
        return cls(int(path.read_text()))

    def describe(self) -> str:
        return f"the count were {self.value}"


class CountLayer:
    """Makes the count with its first plan, then plans from it."""

    name = "count"
    facts = (Count,)

    def __init__(self, otherwise: Count | None = None) -> None:
        self.otherwise = otherwise
        self.seen: list[int] = []

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        yield Plan.of("count: make", [Run("n1", ("make",))], makes=(Count,))
        count = ctx.fact(Count, otherwise=self.otherwise)
        self.seen.append(count.value)
        yield Plan.of("count: use", [Run("n1", ("use", str(count.value)))])


def _run(
    tmp_path: Path, layer: CountLayer, dry_run: bool, apply: Callable[[Run], bool]
) -> tuple[list[str], list[str], list[object]]:
    ctx = LayerContext(require_inventory(REFERENCE), REFERENCE, tmp_path, dry_run=dry_run)
    applier = FakeApplier(apply, kinds=("run",), observe=lambda a: "would change")  # type: ignore[arg-type]
    said: list[str] = []
    outcomes = run_layers(
        [layer], ctx, Options(dry_run=dry_run), appliers=Appliers([applier]), announce=said.append
    )
    (outcome,) = outcomes
    return said, [r.as_dict()["layer"] for r in outcome.reports], [outcome.as_dict()]


def test_a_fact_a_plan_makes_is_gathered_before_the_layer_plans_on(tmp_path: Path) -> None:
    (tmp_path / "count").write_text("1\n")  # an earlier run's, gathered before the first plan

    def apply(action: Run) -> bool:
        if action.argv[0] == "make":
            (tmp_path / "count").write_text("7\n")
        return True

    layer = CountLayer()
    _, plans, (outcome,) = _run(tmp_path, layer, False, apply)
    assert plans == ["count: make", "count: use"]
    assert layer.seen == [7]  # what the plan made, not what stood before it
    assert "pending" not in outcome  # type: ignore[operator]


def test_a_dry_run_says_once_that_the_rest_waits_for_the_plan_that_makes_the_fact(
    tmp_path: Path,
) -> None:
    said, plans, (outcome,) = _run(tmp_path, CountLayer(), True, lambda a: True)
    assert plans == ["count: make"]
    line = "count: the rest is planned once count: make has run (no count yet)"
    assert said.count(line) == 1
    assert outcome["pending"] == [line.removeprefix("count: ")]  # type: ignore[index]


def test_a_dry_run_may_plan_on_from_a_stated_value_and_says_so(tmp_path: Path) -> None:
    layer = CountLayer(otherwise=Count(0))
    said, plans, _ = _run(tmp_path, layer, True, lambda a: True)
    assert plans == ["count: make", "count: use"] and layer.seen == [0]
    assert (
        said.count("count: planned as if the count were 0: no count yet (count: make makes it)")
        == 1
    )


def test_a_real_run_fails_on_a_pending_fact_with_the_same_words(tmp_path: Path) -> None:
    layer = CountLayer(otherwise=Count(0))  # a stated value is for dry runs only
    with pytest.raises(FactPending, match=r"no count yet \(count: make makes it\)"):
        _run(tmp_path, layer, False, lambda a: True)  # the plan did not make it
    assert layer.seen == []


def test_a_fact_nobody_gathered_is_an_error_naming_it(tmp_path: Path) -> None:
    ctx = LayerContext(require_inventory(REFERENCE), REFERENCE, tmp_path)
    with pytest.raises(LabctlError, match="Count was not gathered"):
        ctx.fact(Count)
    assert LayerContext(ctx.inventory, REFERENCE, tmp_path, facts=Facts.of(Count(3))).fact(
        Count
    ) == Count(3)


class Tally:
    """A fact whose gatherer counts its calls: the state directory's ``tally`` file."""

    gathered = 0

    def __init__(self, value: int) -> None:
        self.value = value

    @classmethod
    def gather(cls, ctx: LayerContext) -> Tally:
        cls.gathered += 1
        path = ctx.state_dir / "tally"
        if not path.exists():
            raise FactPending("no tally yet", "tally: bump")
        return cls(int(path.read_text()))

    def describe(self) -> str:
        return f"the tally were {self.value}"


class Bump:
    """Local work: adds one to the tally file (the plan ``tally: bump``)."""

    def apply(self, ctx: LayerContext) -> bool:
        path = ctx.state_dir / "tally"
        path.write_text(str(int(path.read_text()) + 1 if path.exists() else 1))
        return True

    def observe(self, ctx: LayerContext) -> str | None:
        return "would add one to the tally"


class TallyLayer:
    """Reads the tally ``reads`` times, bumps it when ``bump``, then reads it ``reads``
    times again; each read's value is kept in ``seen``."""

    facts = (Tally,)

    def __init__(self, name: str, reads: int, bump: bool = False) -> None:
        self.name, self.reads, self.bump = name, reads, bump
        self.seen: list[int] = []

    def _read(self, ctx: LayerContext) -> Iterator[Plan]:
        for n in range(self.reads):
            self.seen.append(ctx.fact(Tally, otherwise=Tally(0)).value)
            yield Plan.of(f"{self.name}: read {n}", [LocalStep("tally.read", "read", "")])

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        yield from self._read(ctx)
        if self.bump:
            yield Plan.of("tally: bump", [LocalStep("tally.bump", "bump", "")], makes=(Tally,))
            yield from self._read(ctx)


class Nothing:
    """Local work that changes nothing."""

    def apply(self, ctx: LayerContext) -> bool:
        return False

    def observe(self, ctx: LayerContext) -> str | None:
        return None


def _tally_run(tmp_path: Path, layers: list[TallyLayer], dry_run: bool) -> int:
    """How often the runner gathered the tally over ``layers``, applied by the local applier."""
    (tmp_path / "tally").write_text("5")
    Tally.gathered = 0
    ctx = LayerContext(require_inventory(REFERENCE), REFERENCE, tmp_path, dry_run=dry_run)
    works = {"tally.bump": Bump, "tally.read": Nothing}
    outcomes = run_layers(
        layers, ctx, Options(dry_run=dry_run), appliers=Appliers([LocalApplier(ctx, works)])
    )
    assert all(o.status == ("dry-run" if dry_run else "applied") for o in outcomes)
    return Tally.gathered


def test_a_fact_no_plan_changes_is_gathered_once_per_run_over_layers(tmp_path: Path) -> None:
    layers = [TallyLayer("first", 3), TallyLayer("second", 2)]
    assert _tally_run(tmp_path, layers, dry_run=False) == 1
    assert [layer.seen for layer in layers] == [[5, 5, 5], [5, 5]]


def test_a_fact_is_gathered_again_only_after_a_plan_that_makes_it_is_applied(
    tmp_path: Path,
) -> None:
    layers = [TallyLayer("first", 2, bump=True), TallyLayer("second", 2)]
    assert _tally_run(tmp_path, layers, dry_run=False) == 2
    assert [layer.seen for layer in layers] == [[5, 5, 6, 6], [6, 6]]


def test_a_dry_run_gathers_each_fact_once_whatever_its_plans_would_make(tmp_path: Path) -> None:
    layers = [TallyLayer("first", 2, bump=True), TallyLayer("second", 2)]
    assert _tally_run(tmp_path, layers, dry_run=True) == 1
    assert [layer.seen for layer in layers] == [[5, 5, 5, 5], [5, 5]]
    assert (tmp_path / "tally").read_text() == "5"


def test_a_fact_no_layer_reads_is_not_gathered(tmp_path: Path) -> None:
    assert _tally_run(tmp_path, [TallyLayer("idle", 0, bump=True)], dry_run=False) == 0


# What reads the operator's machine: the state directory, the inventory's folder (the
# PKI store, sealed keys), files, and the stores and records that read them.
READS = {"state_dir", "base_dir", "read_text", "read_bytes", "open", "exists", "load",
         "PkiSession", "KeyStore", "MembershipRecord", "read_cert", "read_key"}  # fmt: skip


@pytest.mark.parametrize(
    "path", sorted((ROOT / "labctl" / "layers").glob("*.py")), ids=lambda p: p.name
)
def test_layers_read_facts_not_files(path: Path) -> None:
    names = {
        node.attr if isinstance(node, ast.Attribute) else node.id
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Attribute | ast.Name)
    }
    assert not names & READS, f"{path.name} reads {sorted(names & READS)}: read a fact instead"
