"""The executor: applies a plan through drivers, safely and idempotently.

Targets run in parallel (bounded), steps within a target in order; a step may
also wait for steps on other targets. Observable actions (files) are compared
with what the node has and skipped when already true; unobservable ones
(commands) are skipped when the journal says they ran with the same
fingerprint. Transient driver errors are retried with exponential back-off; a
failure stops its target (later steps are reported as blocked, never half-run)
while other targets carry on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from labctl.drivers.ssh import RemoteCommandError, RemoteFile, SshSession
from labctl.engine.actions import Action, LocalStep, PutFile, Run, WaitFor
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


class Connector(Protocol):
    """Hands out one reusable SSH session per host."""

    def ssh(self, host: str) -> SshSession: ...

    def close(self) -> None: ...


# A handler applies one action; it returns True when it changed something.
Handler = Callable[[Action, Connector], bool]
# An observer says why an action would change its target (None: already true),
# for actions only their layer can see (a server's power, through its BMC).
Observer = Callable[[Action], str | None]
ProgressSink = Callable[[StepResult], None]


@dataclass(frozen=True)
class Options:
    concurrency: int = 8
    retries: int = 2
    backoff: float = 0.5
    dry_run: bool = False


def _put_file(action: Action, connector: Connector) -> bool:
    assert isinstance(action, PutFile)
    ssh = connector.ssh(action.host)
    return ssh.put_file(action.path, action.content, mode=action.mode, owner=action.owner)


def _run(action: Action, connector: Connector) -> bool:
    assert isinstance(action, Run)
    connector.ssh(action.host).run(action.argv, timeout=action.timeout)
    return True


def _wait_for(action: Action, connector: Connector) -> bool:
    """Poll until the check passes; a node that does not answer yet (booting) is polled too."""
    assert isinstance(action, WaitFor)
    deadline = time.monotonic() + action.deadline
    while True:
        remaining = deadline - time.monotonic()
        try:
            ssh = connector.ssh(action.host)
            if not action.argv:
                return False  # connected: that was all it waited for
            if ssh.run(action.argv, check=False, timeout=max(remaining, 1.0)).ok:
                return False
            last = "the check did not pass"
        except (AuthenticationError, HostKeyError):
            raise  # waiting will not change a refusal
        except DriverError as exc:
            last = str(exc)
        if time.monotonic() + action.interval > deadline:
            raise DriverTimeout(f"{action.host}: {action.describe()}: still not true ({last})")
        time.sleep(action.interval)


DEFAULT_HANDLERS: dict[str, Handler] = {
    PutFile.kind: _put_file,
    Run.kind: _run,
    WaitFor.kind: _wait_for,
}


def _retryable(action: Action, exc: Exception) -> bool:
    # A refused key or a command that failed will fail the same way again, and a wait
    # that ran out has had its own deadline.
    if isinstance(exc, AuthenticationError | HostKeyError | RemoteCommandError):
        return False
    if isinstance(action, WaitFor):
        return False
    return isinstance(exc, DriverTimeout | DriverError)


class Executor:
    def __init__(
        self,
        connector: Connector,
        journal: Journal,
        options: Options | None = None,
        handlers: dict[str, Handler] | None = None,
        progress: ProgressSink | None = None,
        observers: dict[str, Observer] | None = None,
    ) -> None:
        self.connector = connector
        self.journal = journal
        self.options = options or Options()
        self.handlers = {**DEFAULT_HANDLERS, **(handlers or {})}
        self.observers = observers or {}
        self.progress = progress
        self._journal_lock = threading.Lock()

    def apply(self, plan: Plan) -> RunReport:
        start = time.monotonic()
        done = {step.id: threading.Event() for step in plan.steps}
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
            # One round trip reads every file the target's plan writes, at its first
            # file (after any wait for the node to boot); the snapshot is trusted
            # only until this target's first change.
            observed: dict[str, RemoteFile | None] | None = None
            looked = False
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
                if isinstance(step.action, PutFile) and not looked:
                    observed, looked = self._observe(steps), True
                result = self._apply_step(plan.layer, step, observed)
                emit(result)
                if result.outcome is Outcome.CHANGED:
                    observed = None
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

    def _observe(self, steps: list[Step]) -> dict[str, RemoteFile | None] | None:
        """The current state of every file the steps write, or None when unknown."""
        paths = [s.action.path for s in steps if isinstance(s.action, PutFile)]
        if len(paths) < 2 or self.handlers.get(PutFile.kind) is not _put_file:
            return None
        try:
            return self.connector.ssh(steps[0].target).stat_files(paths)
        except LabctlError:
            return None  # each step will look for itself, and report its own error

    def _apply_step(
        self, layer: str, step: Step, observed: dict[str, RemoteFile | None] | None = None
    ) -> StepResult:
        action = step.action
        started = time.monotonic()

        def result(
            outcome: Outcome, attempts: int = 1, error: str | None = None, reason: str | None = None
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
            )

        if isinstance(action, Run) and self.journal.done(action.key, action.fingerprint):
            return result(Outcome.SKIPPED)
        if isinstance(action, PutFile) and observed is not None and action.path in observed:
            reason = _file_differs(action, observed[action.path])
            if reason is None:
                return result(Outcome.UNCHANGED)
            if self.options.dry_run:
                return result(Outcome.WOULD_CHANGE, reason=reason)
        if self.options.dry_run:
            try:
                reason = self._would_change(action)
            except LabctlError as exc:
                return result(Outcome.FAILED, error=str(exc))
            return result(Outcome.WOULD_CHANGE if reason else Outcome.UNCHANGED, reason=reason)
        handler = self.handlers.get(action.kind)
        if handler is None:
            return result(Outcome.FAILED, error=f"no driver can apply {action.kind} here")
        attempt = 0
        while True:
            attempt += 1
            try:
                changed = handler(action, self.connector)
                break
            except LabctlError as exc:
                if attempt > self.options.retries or not _retryable(action, exc):
                    return result(Outcome.FAILED, attempt, str(exc))
                time.sleep(self.options.backoff * 2 ** (attempt - 1))
        if changed or isinstance(action, Run):
            with self._journal_lock:
                self.journal.record(action.key, action.fingerprint, layer)
        return result(Outcome.CHANGED if changed else Outcome.UNCHANGED, attempt)

    def _would_change(self, action: Action) -> str | None:
        """Why applying ``action`` would change the target; None when it is already true."""
        observer = self.observers.get(action.kind)
        if observer is not None:
            return observer(action)
        if isinstance(action, PutFile):
            return _file_differs(action, self.connector.ssh(action.host).stat_file(action.path))
        if isinstance(action, Run):
            return "not run yet with these arguments"
        if isinstance(action, WaitFor):
            return None
        if isinstance(action, LocalStep):
            return f"{action.name} runs locally when applied"
        return "cannot be observed; would be applied"


def _file_differs(action: PutFile, current: RemoteFile | None) -> str | None:
    """Why the file on the node is not what ``action`` wants; None when it is."""
    if current is None:
        return "missing"
    reasons = []
    if current.sha256 != action.content_sha256:
        reasons.append("content differs")
    if current.mode != action.mode:
        reasons.append(f"mode {current.mode:04o} -> {action.mode:04o}")
    if action.owner and not _same_owner(current.owner, action.owner):
        reasons.append(f"owner {current.owner} -> {action.owner}")
    return ", ".join(reasons) or None


def _same_owner(actual: str, wanted: str) -> bool:
    """``wanted`` is ``user`` or ``user:group`` as chown takes it; ``actual`` is ``user:group``."""
    return actual == wanted if ":" in wanted else actual.split(":")[0] == wanted


class SshConnector:
    """One SshSession per host, created on first use, from a host -> target resolver."""

    def __init__(self, resolve: Callable[[str], Any]) -> None:
        self._resolve = resolve
        self._sessions: dict[str, SshSession] = {}
        self._lock = threading.Lock()

    def ssh(self, host: str) -> SshSession:
        with self._lock:
            session = self._sessions.get(host)
            if session is None:
                session = SshSession(self._resolve(host))
                self._sessions[host] = session
        session.connect()
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.close()
            self._sessions.clear()
