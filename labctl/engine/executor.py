"""The executor: applies a plan through the run's appliers, safely and idempotently.

Targets run in parallel (bounded), steps within a target in order; a step may
also wait for steps on other targets. Each step goes to the applier for its
action's kind. Observable actions (files, power) are compared with what the
target has and skipped when already true; unobservable ones (commands) are
skipped when the journal says they ran with the same fingerprint. Transient
driver errors are retried with exponential back-off; a failure stops its
target (later steps are reported as blocked, never half-run) while other
targets carry on. A step that depends on secrets (a restart following a file
with a BGP password) is remembered by a fingerprint that includes their sealed
digest (``labctl/secrets/box.py``), never their values.

A layer's plans may be handed a ``LayerAhead`` (``engine/runner.py`` plans the layer
once more at its start): a node's first survey in the layer then reads the steps of
the layer's later plans there too, so a layer where nothing changes costs one survey
per node, not one per plan. Those answers are taken only while nothing in the layer
has changed, and only by a step whose action is equal to the one read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from labctl.drivers.ssh import RemoteCommandError
from labctl.engine.actions import Action, Check, PutFile, WaitFor
from labctl.engine.appliers import Applier, Appliers
from labctl.engine.graph import DEFAULT_WORKERS
from labctl.engine.journal import Journal
from labctl.engine.plan import Plan, Step
from labctl.errors import (
    AuthenticationError,
    DriverError,
    DriverTimeout,
    HostKeyError,
    LabctlError,
)


class Outcome(StrEnum):
    CHANGED = "changed"
    UNCHANGED = "unchanged"  # already true on the target
    SKIPPED = "skipped"  # the journal says it was done with the same fingerprint
    WOULD_CHANGE = "would-change"  # dry run
    FAILED = "failed"
    BLOCKED = "blocked"  # an earlier step on the target, or a dependency, failed
    RUNNING = "running"  # told to the progress display as a step starts; never in a report


@dataclass(frozen=True)
class StepResult:
    step_id: str
    target: str
    description: str
    outcome: Outcome
    seconds: float
    attempts: int = 1
    error: str | None = None
    reason: str | None = None  # why a dry run would change it
    error_detail: str | None = None  # the raw fault under ``error`` (an errno's text), if any

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Outcome) else v) for k, v in self.__dict__.items()}


@dataclass
class RunReport:
    layer: str
    results: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, outcome: Outcome) -> int:
        return sum(r.outcome is outcome for r in self.results)

    @property
    def ok(self) -> bool:
        return not any(r.outcome in (Outcome.FAILED, Outcome.BLOCKED) for r in self.results)

    @property
    def nothing_to_do(self) -> bool:
        return all(r.outcome in (Outcome.UNCHANGED, Outcome.SKIPPED) for r in self.results)

    def summary(self) -> str:
        if self.ok and self.nothing_to_do:
            return f"{self.layer}: nothing to do ({len(self.results)} step(s) already true)"
        parts = [f"{self.count(o)} {o}" for o in Outcome if self.count(o)]
        return f"{self.layer}: {', '.join(parts)} in {self.seconds:.1f} s"

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "ok": self.ok,
            "nothing_to_do": self.nothing_to_do,
            "seconds": round(self.seconds, 3),
            "steps": [r.as_dict() for r in self.results],
        }


ProgressSink = Callable[[StepResult], None]


@dataclass(frozen=True)
class Options:
    concurrency: int = 8  # targets at once, within one plan
    layers_at_once: int = DEFAULT_WORKERS  # independent layers at once (engine/graph.py)
    retries: int = 2
    backoff: float = 0.5
    dry_run: bool = False


# The kinds that are conditions (they change nothing of labctl's): a survey may find them
# already true, with the target's files in one round trip, while nothing in the plan has
# changed.
CONDITIONS = (WaitFor.kind, Check.kind)


class LayerAhead:
    """A layer's plans as planned at its start, and what a node's first survey in the
    layer read of them: one survey per node per layer while nothing changes.

    A node's first survey point in the layer (after its wait for SSH, as any survey)
    also reads every later planned step of the same applier there: files always;
    waits and checks only when every planned command on the node is one the journal
    says ran with the same fingerprint (``Executor._journaled``, over the whole layer
    ahead). A later step takes that answer instead of its plan's survey only while
    nothing has changed in the run since the layer's first plan began, in this layer or
    one running beside it (``stale``: the executor's count of CHANGED steps against its
    count then), and only if its action is
    equal to the one read (content, mode, owner, argv: never by key alone); a step it
    does not cover is surveyed as before. A plan that forgets what the journal
    remembers of a machine takes no part.
    """

    def __init__(self, plans: Sequence[Plan]) -> None:
        self.steps: dict[str, list[Step]] = {}
        for plan in plans:
            if plan.forgets:
                continue
            for target, steps in plan.targets().items():
                self.steps.setdefault(target, []).extend(steps)
        self._changes: Callable[[], int] | None = None  # the executor's count of changes
        self._baseline = 0  # that count when the layer's first plan began
        self._lock = threading.Lock()
        self._claimed: set[tuple[str, int]] = set()  # (target, id of its applier)
        self._read: dict[str, dict[str, Action]] = {}  # by target, by key: what was read
        self._answers: dict[str, dict[str, str | None]] = {}  # by target, by key

    def begin(self, changes: Callable[[], int]) -> None:
        """The layer's first plan begins (later calls change nothing): ``changes`` counts
        the run's CHANGED steps, of every layer."""
        if self._changes is None:
            self._changes, self._baseline = changes, changes()

    def stale(self) -> bool:
        """Whether anything in the run has changed since the layer's first plan began."""
        return self._changes is None or self._changes() != self._baseline

    def claim(self, target: str, applier: Applier) -> bool:
        """True once per target and applier: its first survey in the layer reads ahead."""
        with self._lock:
            if (target, id(applier)) in self._claimed:
                return False
            self._claimed.add((target, id(applier)))
            return True

    def record(
        self, target: str, actions: Sequence[Action], answers: Mapping[str, str | None]
    ) -> None:
        with self._lock:
            self._read.setdefault(target, {}).update({a.key: a for a in actions})
            self._answers.setdefault(target, {}).update(answers)

    def covers(self, action: Action) -> bool:
        """Whether ``action``, equal to one read ahead, may take that reading now."""
        if self.stale():
            return False
        with self._lock:
            return self._read.get(action.host, {}).get(action.key) == action

    def answers(self, actions: Sequence[Action]) -> dict[str, str | None]:
        """The answers read ahead for ``actions`` (each covered; one left unanswered was
        not read, and its step looks for itself)."""
        with self._lock:
            return {
                a.key: self._answers[a.host][a.key]
                for a in actions
                if a.key in self._answers.get(a.host, {})
            }


def _waits_for_ssh(action: Action) -> bool:
    """A wait for the node to answer at all: it surveys nothing (the node may be booting)."""
    return isinstance(action, WaitFor) and not action.argv


def _retryable(action: Action, exc: Exception) -> bool:
    # A refused key or a command that failed will fail the same way again, and a wait
    # that ran out has had its own deadline.
    if isinstance(exc, AuthenticationError | HostKeyError | RemoteCommandError):
        return False
    return action.retried and isinstance(exc, DriverTimeout | DriverError)


class Executor:
    def __init__(
        self,
        appliers: Appliers,
        journal: Journal,
        options: Options | None = None,
        progress: ProgressSink | None = None,
    ) -> None:
        self.appliers = appliers
        self.journal = journal
        self.options = options or Options()
        self.progress = progress
        self._journal_lock = threading.Lock()
        self._changes = 0  # CHANGED steps in this run, of every layer (``LayerAhead``)

    def apply(self, plan: Plan, ahead: LayerAhead | None = None) -> RunReport:
        """Apply ``plan``; ``ahead``: its layer's, when the runner planned the layer ahead."""
        start = time.monotonic()
        if plan.forgets:
            ahead = None  # the journal it was planned against is about to change
        if ahead is not None:
            ahead.begin(lambda: self._changes)
        if not self.options.dry_run:
            with self._journal_lock:  # layers beside this one record as it forgets
                for target in sorted(plan.forgets):
                    self.journal.forget(target)
        done = {step.id: threading.Event() for step in plan.steps}
        changed_anywhere = threading.Event()
        failed: set[str] = set()
        results: list[StepResult] = []
        results_lock = threading.Lock()

        def emit(result: StepResult) -> None:
            with results_lock:
                results.append(result)
                if result.outcome in (Outcome.FAILED, Outcome.BLOCKED):
                    failed.add(result.step_id)
            done[result.step_id].set()
            if self.progress:
                self.progress(result)

        def run_target(steps: list[Step]) -> None:
            try:
                run_steps(steps)
            except BaseException:
                # A fault that is no LabctlError (a bug, an error a driver did not word)
                # leaves this target's remaining steps never done, and every step on
                # another target that waits for one of them would wait for ever: mark
                # them failed so the others end (blocked), then let the fault be seen.
                for step in steps:
                    if not done[step.id].is_set():
                        with results_lock:
                            failed.add(step.id)
                        done[step.id].set()
                raise

        def run_steps(steps: list[Step]) -> None:
            # At the first step for an applier (after any wait for the node to boot), it
            # may read the target state of every later step it carries out here at once:
            # a node's files, and its waits and checks, in one round trip. That reading is
            # trusted only until this target's first change; then a kind none of whose
            # steps was reached yet is read again at its first step.
            known: dict[str, str | None] = {}
            surveyed: set[str] = set()  # kinds read since the target's last change
            reached: set[str] = set()  # kinds with a step carried out
            stopped = False
            for index, step in enumerate(steps):
                for dependency in step.after:
                    done[dependency].wait()
                blocked = stopped or any(d in failed for d in step.after)
                if blocked:
                    emit(
                        StepResult(
                            step.id, step.target, step.action.describe(), Outcome.BLOCKED, 0.0
                        )
                    )
                    stopped = True
                    continue
                if self.progress:  # a wait for a booting node can last minutes: show it
                    self.progress(
                        StepResult(
                            step.id, step.target, step.action.describe(), Outcome.RUNNING, 0.0
                        )
                    )
                kind = step.action.kind
                if kind not in surveyed and not _waits_for_ssh(step.action):
                    read, kinds = self._survey(
                        plan.layer, steps, index, surveyed, changed_anywhere, ahead
                    )
                    known.update(read)
                    surveyed |= kinds
                # A wait or a check read by the survey is answered by it only while
                # nothing in the plan changed: its condition may hang on another target.
                trusted = known
                if kind in CONDITIONS and changed_anywhere.is_set():
                    trusted = {k: v for k, v in known.items() if not k.startswith(kind + ":")}
                result = self._apply_step(plan.layer, step, trusted)
                if result.outcome is Outcome.CHANGED:  # counted before any step waiting
                    with self._journal_lock:  # for this one goes on (``LayerAhead.stale``)
                        self._changes += 1
                emit(result)
                reached.add(kind)
                if result.outcome is Outcome.CHANGED:
                    known.clear()
                    surveyed &= reached
                    changed_anywhere.set()
                stopped = result.outcome is Outcome.FAILED

        targets = plan.targets()
        if targets:
            workers = max(1, min(self.options.concurrency, len(targets)))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="labctl") as pool:
                for future in [pool.submit(run_target, steps) for steps in targets.values()]:
                    future.result()
        order = {step.id: i for i, step in enumerate(plan.steps)}
        results.sort(key=lambda r: order[r.step_id])
        return RunReport(plan.layer, results, time.monotonic() - start)

    def _survey(
        self,
        layer: str,
        steps: list[Step],
        index: int,
        surveyed: set[str],
        changed: threading.Event,
        ahead: LayerAhead | None = None,
    ) -> tuple[Mapping[str, str | None], set[str]]:
        """What the applier of ``steps[index]`` reads at once (``Applier.survey``) of the
        target's steps from there on that it carries out, of kinds not read yet; and the
        kinds it was handed.

        Its waits and checks are handed too only while nothing in the plan has changed
        and every command on the target is one the journal says already ran with the
        same fingerprint: a survey runs them before the steps before them, so they must
        find what they would find in their turn.

        With ``ahead`` (``LayerAhead``) and nothing changed since the layer began: the target's
        first survey in the layer reads its later plans' steps too, and a later survey
        leaves out what that one read of equal actions (none sent when it read all)."""
        applier = self.appliers.for_kind(steps[index].action.kind)
        if applier is None:
            return {}, set()
        mine = [
            s.action
            for s in steps[index:]
            if s.action.kind not in surveyed
            and self.appliers.for_kind(s.action.kind) is applier
            and not _waits_for_ssh(s.action)
        ]
        if changed.is_set() or not self._journaled(layer, steps[index:]):
            # As one kind at a time read them: a kind of condition at its own turn, and
            # only while nothing in the plan has changed.
            current = steps[index].action.kind
            mine = [
                a
                for a in mine
                if a.kind not in CONDITIONS or (a.kind == current and not changed.is_set())
            ]
        kinds = {a.kind for a in mine} | {steps[index].action.kind}
        if ahead is None or ahead.stale():
            return (applier.survey(mine) if mine else {}), kinds
        target = steps[index].target
        if ahead.claim(target, applier):
            return self._survey_ahead(layer, steps[index:], mine, applier, changed, ahead), kinds
        covered = [a for a in mine if ahead.covers(a)]
        rest = [a for a in mine if a not in covered]
        read = dict(applier.survey(rest)) if rest else {}
        read.update(ahead.answers(covered))
        return read, kinds

    def _survey_ahead(
        self,
        layer: str,
        steps: list[Step],
        mine: list[Action],
        applier: Applier,
        changed: threading.Event,
        ahead: LayerAhead,
    ) -> Mapping[str, str | None]:
        """A target's first survey in the layer: ``mine`` (this plan's, as ``_survey``
        chose them) and the layer's later planned steps there, in one round trip; this
        plan's answers returned, all of them kept in ``ahead``."""
        later = ahead.steps.get(steps[0].target, [])
        conditions = not changed.is_set() and self._journaled(layer, [*steps, *later])
        keys = {a.key for a in mine}
        extra: list[Action] = []
        for step in later:
            action = step.action
            if (
                action.key in keys
                or self.appliers.for_kind(action.kind) is not applier
                or _waits_for_ssh(action)
                or (action.kind in CONDITIONS and not conditions)
            ):
                continue
            keys.add(action.key)
            extra.append(action)
        read = [*mine, *extra]
        found = applier.survey(read) if read else {}
        ahead.record(steps[0].target, read, found)
        return {a.key: found[a.key] for a in mine if a.key in found}

    def _journaled(self, layer: str, steps: list[Step]) -> bool:
        """Whether each of ``steps`` other than files, waits and checks (and the wait for
        the node to answer) is a command the journal says ran with the same fingerprint:
        one the run will skip."""
        for step in steps:
            action = step.action
            if action.kind in (*CONDITIONS, PutFile.kind):
                continue
            if not action.remembered:
                return False
            try:
                fingerprint = self._fingerprint(action)
            except LabctlError:
                return False
            if not self.journal.done(action.key, fingerprint, layer):
                return False
        return True

    def _fingerprint(self, action: Action) -> str:
        """``action.fingerprint``, sealed with the secrets it depends on, if any."""
        uses = getattr(action, "secrets", ())
        if not uses:
            return action.fingerprint
        if self.appliers.secrets is None:
            raise LabctlError(
                f"{action.host}: {action.describe()} needs secrets; this run has none"
            )
        return f"{action.fingerprint}:{self.appliers.secrets.seal(uses)}"

    def _apply_step(
        self, layer: str, step: Step, known: Mapping[str, str | None] | None = None
    ) -> StepResult:
        action = step.action
        started = time.monotonic()

        def result(
            outcome: Outcome,
            attempts: int = 1,
            error: str | None = None,
            reason: str | None = None,
            detail: str | None = None,
        ) -> StepResult:
            return StepResult(
                step.id,
                step.target,
                action.describe(),
                outcome,
                time.monotonic() - started,
                attempts,
                error,
                reason,
                detail or None,
            )

        try:
            fingerprint = self._fingerprint(action)
        except LabctlError as exc:  # a secret that cannot be read: named, never shown
            return result(Outcome.FAILED, error=str(exc), detail=exc.detail)
        if action.remembered and self.journal.done(action.key, fingerprint, layer):
            return result(Outcome.SKIPPED)
        if known is not None and action.key in known:
            reason = known[action.key]
            if reason is None:
                return result(Outcome.UNCHANGED)
            if self.options.dry_run:
                return result(Outcome.WOULD_CHANGE, reason=reason)
        applier = self.appliers.for_kind(action.kind)
        if applier is None:
            return result(Outcome.FAILED, error=f"no applier carries out {action.kind} actions")
        if self.options.dry_run:
            try:
                reason = applier.observe(action)
            except LabctlError as exc:
                return result(Outcome.FAILED, error=str(exc), detail=exc.detail)
            return result(Outcome.WOULD_CHANGE if reason else Outcome.UNCHANGED, reason=reason)
        attempt = 0
        while True:
            attempt += 1
            try:
                changed = applier.apply(action)
                break
            except LabctlError as exc:
                if attempt > self.options.retries or not _retryable(action, exc):
                    return result(Outcome.FAILED, attempt, str(exc), detail=exc.detail)
                time.sleep(self.options.backoff * 2 ** (attempt - 1))
        if changed or action.remembered:
            with self._journal_lock:
                self.journal.record(action.key, fingerprint, layer)
        return result(Outcome.CHANGED if changed else Outcome.UNCHANGED, attempt)
