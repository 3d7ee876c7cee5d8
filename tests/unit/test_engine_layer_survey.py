"""One survey per node per layer (issue 28): the runner plans a layer ahead, and a node's
first survey in the layer reads every later plan's steps there too.

Through the real runner, executor and SSH applier, against a stand-in connector whose
nodes keep files and answer conditions in memory and count every round trip per host
(a survey, a stat, a write, a command). The answers read ahead are taken only while
nothing in the layer has changed, only by an equal action (never by key alone), and
a node's waits and checks are read ahead only when every command planned there is one
the journal says ran.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from labctl.drivers.ssh import RemoteFile, RunResult, WantedFile
from labctl.engine.actions import Action, Check, LocalStep, PutFile, Run, WaitFor
from labctl.engine.appliers import Appliers, LocalApplier, SshApplier
from labctl.engine.executor import Options, Outcome
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan
from labctl.engine.runner import LayerOutcome, run_layers
from labctl.inventory import require_inventory
from tests.conftest import REFERENCE

NODES = ("n1", "n2")


@dataclass
class Node:
    """A node's files (path -> content, mode), the commands that pass on it, and what it
    was asked: one entry per round trip."""

    name: str
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    passing: set[tuple[str, ...]] = field(default_factory=set)
    trips: list[str] = field(default_factory=list)
    surveys: list[tuple[list[str], list[str]]] = field(default_factory=list)

    def _stat(self, path: str) -> RemoteFile | None:
        if path not in self.files:
            return None
        content, mode = self.files[path]
        return RemoteFile(hashlib.sha256(content).hexdigest(), mode, "root:root")

    def survey(
        self,
        files: Sequence[WantedFile],
        commands: Sequence[Sequence[str]],
        timeout: float | None = None,
    ) -> tuple[dict[str, RemoteFile | None], list[bool] | None]:
        self.trips.append("survey")
        self.surveys.append(([f.path for f in files], [" ".join(c) for c in commands]))
        found = {f.path: self._stat(f.path) for f in files}
        as_wanted = all(
            (s := found[f.path]) is not None and (s.sha256, s.mode) == (f.sha256, f.mode)
            for f in files
        )
        return found, [tuple(c) in self.passing for c in commands] if as_wanted else None

    def stat_file(self, path: str) -> RemoteFile | None:
        self.trips.append("stat " + path)
        return self._stat(path)

    def put_file(
        self, path: str, content: bytes, *, mode: int = 0o644, owner: str | None = None
    ) -> bool:
        self.trips.append("put " + path)
        if self.files.get(path) == (content, mode):
            return False
        self.files[path] = (content, mode)
        return True

    def run(self, argv: Sequence[str], **_: object) -> RunResult:
        self.trips.append("run " + " ".join(argv))
        return RunResult(
            tuple(argv), 0 if tuple(argv) in self.passing or argv[0] != "test" else 1, b"", b""
        )


class StandInConnector:
    """Hands out each node of ``nodes`` as its own SSH session."""

    def __init__(self, nodes: dict[str, Node]) -> None:
        self.nodes = nodes

    def ssh(self, host: str) -> Node:
        return self.nodes[host]

    def close(self) -> None:
        pass


def _files(node: str, plan: int, content: bytes = b"wanted") -> list[Action]:
    return [PutFile(node, f"/etc/p{plan}/{name}", content) for name in ("a", "b")]


class ThreePlans:
    """Three plans, each on both nodes: a wait for SSH, two files, a check; the third
    also a restart and a wait for it (a command the journal remembers)."""

    name = "demo"
    facts = ()

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        for plan in (1, 2, 3):
            actions: list[Action] = []
            for node in NODES:
                actions += [WaitFor(node, (), what="SSH to answer"), *_files(node, plan)]
                actions.append(Check(node, ("test", "-e", f"/p{plan}"), what=f"p{plan}"))
                if plan == 3:
                    actions += [
                        Run(node, ("systemctl", "restart", "demo")),
                        WaitFor(node, ("test", "-e", "/running")),
                    ]
            yield Plan.of(f"demo: p{plan}", actions)


def _lab() -> dict[str, Node]:
    passing = {("test", "-e", f"/p{p}") for p in (1, 2, 3)} | {("test", "-e", "/running")}
    return {name: Node(name, passing=set(passing)) for name in NODES}


def _run(
    tmp_path: Path, layer: object, nodes: dict[str, Node], dry_run: bool = False
) -> LayerOutcome:
    ctx = LayerContext(require_inventory(REFERENCE), REFERENCE, tmp_path, dry_run=dry_run)
    works = {"demo.record": RecordWork}
    appliers = Appliers([SshApplier(StandInConnector(nodes)), LocalApplier(ctx, works)])  # type: ignore[arg-type]
    (outcome,) = run_layers([layer], ctx, Options(dry_run=dry_run), appliers=appliers)  # type: ignore[list-item]
    assert outcome.status == ("dry-run" if dry_run else "applied")
    return outcome


def _outcomes(outcome: LayerOutcome) -> list[Outcome]:
    return [r.outcome for report in outcome.reports for r in report.results]


def _converge(tmp_path: Path, layer: object, nodes: dict[str, Node]) -> None:
    """A first run that writes every file and runs every command, then forgets the trips."""
    _run(tmp_path, layer, nodes)
    for node in nodes.values():
        node.trips.clear()
        node.surveys.clear()


def test_a_converged_layer_of_three_plans_costs_one_survey_per_node(tmp_path: Path) -> None:
    nodes = _lab()
    _converge(tmp_path, ThreePlans(), nodes)
    outcome = _run(tmp_path, ThreePlans(), nodes)
    assert set(_outcomes(outcome)) == {Outcome.UNCHANGED, Outcome.SKIPPED}
    for node in nodes.values():
        assert node.trips == ["survey"], node.name  # it was one per plan: three
        ((files, commands),) = node.surveys
        assert sorted(files) == sorted(f"/etc/p{p}/{n}" for p in (1, 2, 3) for n in "ab")
        assert commands == [
            "test -e /p1",
            "test -e /p2",
            "test -e /p3",
            "test -e /running",
        ]
    # a dry run of the converged lab: the same one survey a node, nothing it would change
    dry = _run(tmp_path, ThreePlans(), nodes, dry_run=True)
    assert set(_outcomes(dry)) == {Outcome.UNCHANGED, Outcome.SKIPPED}
    assert [n.trips for n in nodes.values()] == [["survey", "survey"]] * 2


def test_a_change_in_the_first_plan_falls_back_to_a_survey_per_plan(tmp_path: Path) -> None:
    nodes = _lab()
    _converge(tmp_path, ThreePlans(), nodes)
    del nodes["n1"].files["/etc/p1/a"]  # the first plan writes it again
    # ... and n2's third-plan file changes behind the first survey's back: only a survey
    # of its own plan, after the change, can see it
    real_put = nodes["n1"].put_file

    def put_and_drift(path: str, content: bytes, **kwargs: object) -> bool:
        nodes["n2"].files["/etc/p3/b"] = (b"drifted", 0o644)
        return real_put(path, content, **kwargs)  # type: ignore[arg-type]

    nodes["n1"].put_file = put_and_drift  # type: ignore[method-assign]
    outcome = _run(tmp_path, ThreePlans(), nodes)
    changed = [
        r.target
        for report in outcome.reports
        for r in report.results
        if r.outcome is Outcome.CHANGED
    ]
    assert changed == ["n1", "n2"]  # n1's missing file; n2's drifted one, seen by its plan
    assert nodes["n2"].files["/etc/p3/b"] == (b"wanted", 0o644)
    # the first survey of each node read the layer ahead; after the change each later
    # plan surveys again, as before
    assert [len(files) for files, _ in nodes["n1"].surveys] == [6, 2, 2]
    # n2's first survey reads ahead only if it comes before n1's change (they run at
    # once); either way its later plans survey their own files
    assert [len(files) for files, _ in nodes["n2"].surveys][1:] == [2, 2]


@dataclass(frozen=True)
class Wanted:
    """A fact: what the state directory's ``wanted`` file says the files should hold."""

    content: bytes

    @classmethod
    def gather(cls, ctx: LayerContext) -> Self:
        path = ctx.state_dir / "wanted"
        return cls(path.read_bytes() if path.exists() else b"wanted")

    def describe(self) -> str:
        return "the wanted content"


class RecordWork:
    """Local work that records new wanted content and says it changed nothing (as a
    record of what it compared may be written by a step that changes nothing)."""

    def apply(self, ctx: LayerContext) -> bool:
        (ctx.state_dir / "wanted").write_bytes(b"new")
        return False

    def observe(self, ctx: LayerContext) -> str | None:
        return None


class RecordThenFiles:
    """A local plan that makes ``Wanted``, a plan of files, then one planned from it."""

    name = "demo"
    facts = (Wanted,)

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        yield Plan.of("demo: record", [LocalStep("demo.record", "record", "")], makes=(Wanted,))
        yield Plan.of("demo: p1", [a for node in NODES for a in _files(node, 1)])
        content = ctx.fact(Wanted).content
        yield Plan.of("demo: p2", [a for node in NODES for a in _files(node, 2, content)])


def test_a_changed_action_is_never_answered_by_the_survey_ahead(tmp_path: Path) -> None:
    """Planned ahead, the second plan's files want "wanted" (as the fact stood) and are
    so; planned after the record (which says it changed nothing, so the layer's flag
    stays down), they want "new": same keys, other content."""
    nodes = _lab()
    for node in nodes.values():
        for plan in (1, 2):
            for f in _files(node.name, plan):
                assert isinstance(f, PutFile)
                node.files[f.path] = (f.content, f.mode)
    outcome = _run(tmp_path, RecordThenFiles(), nodes)
    assert [r.outcome for r in outcome.reports[1].results] == [Outcome.UNCHANGED] * 4
    assert [r.outcome for r in outcome.reports[2].results] == [Outcome.CHANGED] * 4
    assert {node.files["/etc/p2/a"][0] for node in nodes.values()} == {b"new"}
    # the survey ahead read the first plan's files and the second's as planned ahead;
    # the second plan, its actions not those read, surveyed its own
    for node in nodes.values():
        assert [len(files) for files, _ in node.surveys] == [4, 2], node.name


class UnjournaledCommand:
    """Two plans on n1: files and a check; then a new command and a wait after it."""

    name = "demo"
    facts = ()

    def __init__(self, restart: str) -> None:
        self.restart = restart

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        yield Plan.of("demo: p1", [*_files("n1", 1), Check("n1", ("test", "-e", "/p1"), what="p1")])
        yield Plan.of(
            "demo: p2",
            [
                *_files("n1", 2),
                Run("n1", ("systemctl", "restart", self.restart)),
                WaitFor("n1", ("test", "-e", "/running")),
            ],
        )


def test_conditions_are_not_read_ahead_when_a_command_is_not_journaled(tmp_path: Path) -> None:
    nodes = {"n1": _lab()["n1"]}
    _converge(tmp_path, UnjournaledCommand("v1"), nodes)
    outcome = _run(tmp_path, UnjournaledCommand("v2"), nodes)  # a restart the journal lacks
    assert _outcomes(outcome).count(Outcome.CHANGED) == 1
    n1 = nodes["n1"]
    # the first survey read both plans' files and the first plan's check (no command
    # before it), not the wait after the restart the journal lacks: that one polled for
    # itself once the restart had run; the second plan's files were answered ahead
    assert n1.surveys == [
        (["/etc/p1/a", "/etc/p1/b", "/etc/p2/a", "/etc/p2/b"], ["test -e /p1"]),
    ]
    assert n1.trips == ["survey", "run systemctl restart v2", "run test -e /running"]
    # journaled now, the same layer reads its wait ahead too: one round trip in all
    n1.trips.clear()
    n1.surveys.clear()
    again = _run(tmp_path, UnjournaledCommand("v2"), nodes)
    assert set(_outcomes(again)) == {Outcome.UNCHANGED, Outcome.SKIPPED}
    assert n1.trips == ["survey"]
    assert n1.surveys[0][1] == ["test -e /p1", "test -e /running"]


def test_a_change_by_a_layer_beside_it_ends_the_answers_read_ahead(tmp_path: Path) -> None:
    """Layers run at once (engine/graph.py): a change another layer makes between two of
    this layer's plans sends the next plan back to its own survey."""
    from labctl.engine.executor import Executor, LayerAhead
    from labctl.engine.journal import Journal

    nodes = _lab()
    _converge(tmp_path, ThreePlans(), nodes)
    plans = list(
        ThreePlans().plans(LayerContext(require_inventory(REFERENCE), REFERENCE, tmp_path))
    )
    executor = Executor(Appliers([SshApplier(StandInConnector(nodes))]), Journal(tmp_path))  # type: ignore[arg-type]
    ahead = LayerAhead(plans)
    assert executor.apply(plans[0], ahead).nothing_to_do
    beside = Plan.of("other: files", [PutFile("n2", "/etc/other", b"other")])
    assert executor.apply(beside).count(Outcome.CHANGED) == 1
    nodes["n1"].files["/etc/p2/a"] = (b"drifted", 0o644)  # as the other layer might
    second = executor.apply(plans[1], ahead)
    assert [r.target for r in second.results if r.outcome is Outcome.CHANGED] == ["n1"]
    assert [len(files) for files, _ in nodes["n1"].surveys] == [6, 2]
