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
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from labctl.drivers.ssh import RemoteCommandError
from labctl.engine.actions import Action, Check, WaitFor
from labctl.engine.appliers import Appliers
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


# The kinds that are conditions (they change nothing): a survey may find them already
# true, in one round trip per target, while nothing in the plan has changed.
CONDITIONS = (WaitFor.kind, Check.kind)


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

    def apply(self, plan: Plan) -> RunReport:
        start = time.monotonic()
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
            # At the first step of each kind (after any wait for the node to boot), its
            # applier may read every such step's target state at once (all the files
            # of a node in one round trip); that reading is trusted only until this
            # target's first change.
            known: dict[str, str | None] = {}
            surveyed: set[str] = set()
            stopped = False
            for step in steps:
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
                    surveyed.add(kind)
                    # (conditions once something changed: their answers would not be used)
                    if kind not in CONDITIONS or not changed_anywhere.is_set():
                        actions = [s.action for s in steps if s.action.kind == kind]
                        known.update(self._survey(actions))
                # A wait or a check read by the survey is answered by it only while
                # nothing in the plan changed: its condition may hang on another target.
                trusted = known
                if kind in CONDITIONS and changed_anywhere.is_set():
                    trusted = {k: v for k, v in known.items() if not k.startswith(kind + ":")}
                result = self._apply_step(plan.layer, step, trusted)
                emit(result)
                if result.outcome is Outcome.CHANGED:
                    known.clear()
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

    def _survey(self, actions: list[Action]) -> Mapping[str, str | None]:
        applier = self.appliers.for_kind(actions[0].kind)
        if applier is None:
            return {}
        return applier.survey(actions)

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
