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
from labctl.engine.appliers import Appliers, LocalApplier, LocalWork
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
        if not ctx.facts.planning_ahead:  # the runner's pass ahead (engine/runner.py)
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
            value = ctx.fact(Tally, otherwise=Tally(0)).value
            if not ctx.facts.planning_ahead:  # the runner's pass ahead (engine/runner.py)
                self.seen.append(value)
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
    works: dict[str, Callable[..., LocalWork]] = {"tally.bump": Bump, "tally.read": Nothing}
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


# Calls that read (or write) the operator's disk: a layer reads a fact instead.
FILE_METHODS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "exists",
                "is_file", "is_dir", "iterdir", "glob", "rglob", "stat", "lstat", "readlink",
                "resolve", "unlink", "mkdir"}  # fmt: skip
FILE_FUNCTIONS = {"open", "io.open", "Path.exists", "pathlib.Path.exists"}
# The context's places on the operator's disk: a store or record opened through one
# (``MembershipRecord.load(ctx.state_dir)``) is a file read too.
DISK_PLACES = {"state_dir", "base_dir"}


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a name or attribute chain, None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def file_reads(source: str, filename: str = "<layer>") -> list[str]:
    """Where ``source`` touches files: ``line: call``. Calls to open and to a path's
    read_text, read_bytes, exists (and the like), any use of ``os`` (``os.path``
    included), imported or called, and any use of the context's disk places."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            names = [module or ""] + [alias.name for alias in node.names]
            if any(n == "os" or n.startswith("os.") for n in names if n):
                found.append(f"{node.lineno}: import of os")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            method = node.func.attr if isinstance(node.func, ast.Attribute) else None
            if name in FILE_FUNCTIONS or method in FILE_METHODS:
                found.append(f"{node.lineno}: {name or method}()")
            elif name is not None and name.split(".")[0] == "os":
                found.append(f"{node.lineno}: {name}()")
        elif isinstance(node, ast.Attribute) and node.attr in DISK_PLACES:
            found.append(f"{node.lineno}: .{node.attr}")
    return found


@pytest.mark.parametrize(
    "path", sorted((ROOT / "labctl" / "layers").glob("*.py")), ids=lambda p: p.name
)
def test_layers_read_facts_not_files(path: Path) -> None:
    found = file_reads(path.read_text(), str(path))
    assert not found, f"{path.name} touches files ({'; '.join(found)}): read a fact instead"


@pytest.mark.parametrize(
    "source",
    [
        "def plans(ctx):\n    return open(ctx.state_dir / 'x').read()",
        "def plans(ctx):\n    return (ctx.state_dir / 'x').read_text()",
        "def plans(ctx):\n    return ctx.base_dir.joinpath('k').read_bytes()",
        "from pathlib import Path\ndef plans(ctx):\n    return Path.exists(ctx.state_dir)",
        "def plans(ctx):\n    return (ctx.state_dir / 'survey.json').exists()",
        "import os\ndef plans(ctx):\n    return os.listdir(ctx.state_dir)",
        "import os.path\ndef plans(ctx):\n    return os.path.exists('x')",
        "from os import stat\ndef plans(ctx):\n    return stat('x')",
        "def plans(ctx):\n    return MembershipRecord.load(ctx.state_dir).joined",
    ],
)
def test_the_file_check_finds_a_planted_read(source: str) -> None:
    assert file_reads(source)


def test_the_file_check_lets_a_fact_read_pass() -> None:
    assert not file_reads("def plans(ctx):\n    return ctx.fact(Count).value + len('open')")


# The state files that are a fact's cache, by the call that reads them: read by the
# fact's gatherer (a method named ``gather``) and nowhere else in labctl.
CACHE_READERS = {"MembershipRecord.load", "cls.load", "survey.load", "load"}
CACHE_MODULES = {"etcd/membership.py", "os/survey.py"}


def _cache_reads(path: Path) -> list[tuple[str, int, str]]:
    """(function, line, call) for each call in ``path`` that reads a fact's cache file."""
    own = path.relative_to(ROOT / "labctl").as_posix() in CACHE_MODULES
    found = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
                continue
            if isinstance(child, ast.Call):
                name = _dotted(child.func)
                ours = name in {"MembershipRecord.load", "survey.load"}
                if ours or (own and name in CACHE_READERS):
                    found.append((function, child.lineno, str(name)))
            visit(child, function)

    visit(ast.parse(path.read_text(), str(path)), "<module>")
    return found


def test_a_facts_cache_file_has_one_reader_its_gatherer() -> None:
    reads = {
        f"{path.relative_to(ROOT).as_posix()}:{line} {call} in {function}"
        for path in sorted((ROOT / "labctl").rglob("*.py"))
        for function, line, call in _cache_reads(path)
    }
    assert reads, "the check found no reader at all: it looks at nothing"
    assert all(r.endswith(" in gather") for r in reads), sorted(reads)
