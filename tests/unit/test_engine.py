"""Plans, the journal, the lock, the executor's scheduling and the runner (fake appliers)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from labctl.engine.actions import Action, PutFile, Run, SetBootDevice, SetPower, WaitFor
from labctl.engine.appliers import Appliers, SshApplier
from labctl.engine.executor import Executor, Options, Outcome
from labctl.engine.journal import Journal, RunLock
from labctl.engine.plan import Plan, Step
from labctl.errors import AuthenticationError, DriverError, DriverTimeout, HostKeyError, LabctlError


class FakeApplier:
    """Carries out ``kinds`` with ``apply``; a dry run asks ``observe``."""

    def __init__(
        self,
        apply: Callable[[Action], bool],
        kinds: tuple[str, ...] = ("run", "set-power"),
        observe: Callable[[Action], str | None] | None = None,
    ) -> None:
        self.kinds = kinds
        self._apply = apply
        self._observe = observe
        self.closed = 0

    def apply(self, action: Action) -> bool:
        return self._apply(action)

    def observe(self, action: Action) -> str | None:
        return self._observe(action) if self._observe else "cannot be observed here"

    def survey(self, actions: Sequence[Action]) -> Mapping[str, str | None]:
        return {}

    def close(self) -> None:
        self.closed += 1


def test_plan_rejects_duplicates_and_unknown_dependencies() -> None:
    a = Run("n1", ("true",))
    with pytest.raises(ValueError, match="unique"):
        Plan("x", (Step("s", a), Step("s", a)))
    with pytest.raises(ValueError, match="unknown"):
        Plan("x", (Step("s", a, after=("nope",)),))


def test_plan_renders_tree_and_json_without_secret_content() -> None:
    plan = Plan.of(
        "pki",
        [PutFile("fohn", "/etc/ssl/k.pem", b"PRIVATE", 0o600, secret=True), Run("wind", ("true",))],
    )
    tree = plan.render_tree()
    assert "fohn" in tree and "write /etc/ssl/k.pem (7 B, 0600)" in tree
    data = json.loads(plan.to_json())
    assert data["targets"]["fohn"][0]["sha256"]
    assert "PRIVATE" not in plan.to_json() and "PRIVATE" not in tree


def test_journal_survives_a_torn_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.record("k1", "f1", "pki")
    with journal.path.open("a") as handle:
        handle.write('{"key": "k2", "fingerp')  # killed mid-write
    again = Journal(tmp_path)
    assert again.done("k1", "f1", "pki: push")
    assert not again.done("k1", "other", "pki: push")
    assert not again.done("k2", "f2", "pki: push")


def test_each_layer_remembers_its_own_run_of_the_same_command(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.record("run:fohn:systemctl daemon-reload", "etcd-files", "etcd: members")
    journal.record("run:fohn:systemctl daemon-reload", "kube-files", "kubernetes: nodes")
    again = Journal(tmp_path)
    assert again.done("run:fohn:systemctl daemon-reload", "etcd-files", "etcd: start wind")
    assert again.done("run:fohn:systemctl daemon-reload", "kube-files", "kubernetes: nodes")
    assert not again.done("run:fohn:systemctl daemon-reload", "kube-files", "etcd: members")


def test_a_machine_installed_again_is_forgotten(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.record("run:fohn:systemctl enable kubelet", "f", "kubernetes: nodes")
    journal.record("run:wind:systemctl enable kubelet", "f", "kubernetes: nodes")
    journal.forget("fohn")
    assert not journal.done("run:fohn:systemctl enable kubelet", "f", "kubernetes: nodes")
    again = Journal(tmp_path)  # the forget line holds for a later run
    assert not again.done("run:fohn:systemctl enable kubelet", "f", "kubernetes: nodes")
    assert again.done("run:wind:systemctl enable kubelet", "f", "kubernetes: nodes")
    # Remembered again after the forget: a later run skips it again.
    again.record("run:fohn:systemctl enable kubelet", "f", "kubernetes: nodes")
    assert Journal(tmp_path).done("run:fohn:systemctl enable kubelet", "f", "kubernetes: nodes")


def test_a_plan_that_installs_a_machine_runs_its_remembered_steps_again(
    tmp_path: Path,
) -> None:
    ran: list[str] = []

    def handler(action: Action) -> bool:
        ran.append(action.host)
        return True

    enable = Plan.of("kubernetes: nodes", [Run("fohn", ("enable",)), Run("wind", ("enable",))])
    executor = _executor(tmp_path, handler)
    executor.apply(enable)
    assert executor.apply(enable).count(Outcome.SKIPPED) == 2
    install = Plan("os: install", (), frozenset({"fohn"}))
    assert "forgets what the journal remembers of fohn" in install.render_tree()
    _executor(tmp_path, handler, dry_run=True).apply(install)  # a dry run forgets nothing
    assert _executor(tmp_path, handler).apply(enable).count(Outcome.SKIPPED) == 2
    executor = _executor(tmp_path, handler)
    executor.apply(install)
    ran.clear()
    report = executor.apply(enable)
    assert ran == ["fohn"] and report.count(Outcome.SKIPPED) == 1


def test_second_run_is_refused_by_the_lock(tmp_path: Path) -> None:
    with (
        RunLock(tmp_path),
        pytest.raises(LabctlError, match="another labctl run"),
        RunLock(tmp_path),
    ):
        pass
    with RunLock(tmp_path):  # released: a later run gets it
        pass


def _executor(tmp_path: Path, handler: Callable[[Action], bool], **options: object) -> Executor:
    return Executor(
        Appliers([FakeApplier(handler)]),
        Journal(tmp_path),
        Options(**options),  # type: ignore[arg-type]
    )


def test_order_within_target_parallel_across_targets(tmp_path: Path) -> None:
    log: list[tuple[str, str]] = []
    lock = threading.Lock()

    def handler(action: Action) -> bool:
        assert isinstance(action, Run)
        time.sleep(0.2)
        with lock:
            log.append((action.host, action.argv[0]))
        return True

    plan = Plan.of("x", [Run(h, (str(i),)) for h in ("a", "b", "c") for i in range(2)])
    start = time.monotonic()
    report = _executor(tmp_path, handler).apply(plan)
    assert time.monotonic() - start < 1.0  # 3 targets x 2 steps x 0.2 s, in parallel
    assert report.ok and report.count(Outcome.CHANGED) == 6
    for host in "abc":
        assert [s for h, s in log if h == host] == ["0", "1"]


def test_failure_blocks_the_rest_of_its_target_and_its_dependents(tmp_path: Path) -> None:
    def handler(action: Action) -> bool:
        if isinstance(action, Run) and action.argv == ("bad",):
            raise LabctlError("boom")
        return True

    plan = Plan(
        "x",
        (
            Step("a1", Run("a", ("bad",))),
            Step("a2", Run("a", ("later",))),
            Step("b1", Run("b", ("needs-a1",)), after=("a1",)),
            Step("c1", Run("c", ("fine",))),
        ),
    )
    report = _executor(tmp_path, handler).apply(plan)
    outcomes = {r.step_id: r.outcome for r in report.results}
    assert outcomes == {
        "a1": Outcome.FAILED,
        "a2": Outcome.BLOCKED,
        "b1": Outcome.BLOCKED,
        "c1": Outcome.CHANGED,
    }
    assert not report.ok
    assert report.results[0].error == "boom"


def test_a_fault_that_is_no_labctl_error_ends_the_plan_instead_of_hanging_it(
    tmp_path: Path,
) -> None:
    """b1 waits for a2, which never runs: a1's fault (a bug, not a worded error) must end
    the plan, the fault raised and b1 blocked, rather than leave b1 waiting for ever."""

    def handler(action: Action) -> bool:
        if isinstance(action, Run) and action.argv == ("bug",):
            raise KeyError("not a LabctlError")
        return True

    plan = Plan(
        "x",
        (
            Step("a1", Run("a", ("bug",))),
            Step("a2", Run("a", ("later",))),
            Step("b1", Run("b", ("needs-a2",)), after=("a2",)),
        ),
    )
    raised: list[BaseException] = []

    def apply() -> None:
        try:
            _executor(tmp_path, handler).apply(plan)
        except BaseException as exc:  # the fault must reach the caller
            raised.append(exc)

    runner = threading.Thread(target=apply, daemon=True)
    runner.start()
    runner.join(timeout=10)
    assert not runner.is_alive(), "the plan hung waiting for a step that never ran"
    assert [type(e) for e in raised] == [KeyError]


def test_transient_errors_are_retried_with_backoff(tmp_path: Path) -> None:
    calls: list[float] = []

    def handler(action: Action) -> bool:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise DriverTimeout("slow BMC")
        return True

    report = _executor(tmp_path, handler, retries=2, backoff=0.05).apply(
        Plan.of("x", [SetPower("a", "on")])
    )
    assert report.results[0].outcome is Outcome.CHANGED
    assert report.results[0].attempts == 3
    assert calls[2] - calls[1] >= calls[1] - calls[0] >= 0.05  # exponential


def test_runs_are_journalled_and_skipped_next_time(tmp_path: Path) -> None:
    count = 0

    def handler(action: Action) -> bool:
        nonlocal count
        count += 1
        return True

    plan = Plan.of("x", [Run("a", ("systemctl", "restart", "etcd"), triggers=("h1",))])
    assert _executor(tmp_path, handler).apply(plan).count(Outcome.CHANGED) == 1
    again = _executor(tmp_path, handler).apply(plan)
    assert again.nothing_to_do and again.results[0].outcome is Outcome.SKIPPED
    changed = Plan.of("x", [Run("a", ("systemctl", "restart", "etcd"), triggers=("h2",))])
    assert _executor(tmp_path, handler).apply(changed).count(Outcome.CHANGED) == 1
    assert count == 2


class FakeLayer:
    def __init__(self, name: str, fail: bool = False) -> None:
        self.name = name
        self.fail = fail

    def plans(self, ctx: object) -> Iterator[Plan]:
        yield Plan.of(self.name, [Run("n1", ("fail" if self.fail else "ok", self.name))])


def _run_or_fail(action: Action) -> bool:
    if isinstance(action, Run) and action.argv[0] == "fail":
        raise LabctlError("layer broke")
    return True


def test_runner_order_not_built_and_stop_after_failure(tmp_path: Path) -> None:
    from labctl.engine.layer import Layer, LayerContext, NotBuilt, select_layers
    from labctl.engine.runner import run_layers
    from labctl.inventory import load_inventory
    from tests.conftest import REFERENCE

    inventory = load_inventory(REFERENCE).inventory
    assert inventory is not None
    ctx = LayerContext(inventory, REFERENCE, tmp_path)
    layers = (
        FakeLayer("power"),
        NotBuilt("os"),
        FakeLayer("pki", fail=True),
        FakeLayer("etcd"),
        NotBuilt("ceph"),
    )
    applier = FakeApplier(_run_or_fail)
    said: list[str] = []
    outcomes = run_layers(
        layers, ctx, Options(), appliers=Appliers([applier]), announce=said.append
    )
    assert [(o.name, o.status) for o in outcomes] == [
        ("power", "applied"),
        ("os", "not-built"),
        ("pki", "failed"),
    ]
    assert said[-1] == "pki failed; later layers were not run"
    assert applier.closed == 1  # once, at the end of the run, though a layer failed

    def names(chosen: Sequence[Layer]) -> list[str]:
        return [layer.name for layer in chosen]

    assert names(select_layers(layers, ["ceph", "power"], None)) == ["power", "ceph"]
    assert names(select_layers(layers, None, "etcd")) == ["etcd", "ceph"]
    with pytest.raises(ValueError, match="unknown layer 'nope'; layers are: power, os, pki"):
        select_layers(layers, ["nope"], None)


def noting_kinds(into: list[str]) -> Callable[[Action], bool]:
    """An apply that notes each action's kind in ``into`` and says it changed something."""

    def apply(action: Action) -> bool:
        into.append(action.kind)
        return True

    return apply


def test_each_action_goes_to_the_applier_for_its_kind_whatever_its_layer(
    tmp_path: Path,
) -> None:
    seen: dict[str, list[str]] = {"ssh": [], "bmc": []}
    ssh = FakeApplier(noting_kinds(seen["ssh"]), kinds=("run",))
    bmc = FakeApplier(noting_kinds(seen["bmc"]), kinds=("set-power", "set-boot-device"))
    plan = Plan.of(
        "os", [SetBootDevice("n1", "pxe"), SetPower("n1", "cycle"), Run("n1", ("true",))]
    )
    report = Executor(Appliers([ssh, bmc]), Journal(tmp_path)).apply(plan)
    assert report.ok and report.count(Outcome.CHANGED) == 3
    assert seen == {"ssh": ["run"], "bmc": ["set-boot-device", "set-power"]}
    orphan = Executor(Appliers([ssh]), Journal(tmp_path)).apply(
        Plan.of("os", [SetBootDevice("n1", "pxe")])
    )
    assert orphan.results[0].outcome is Outcome.FAILED
    assert orphan.results[0].error == "no applier carries out set-boot-device actions"
    with pytest.raises(ValueError, match="two appliers carry out run actions"):
        Appliers([ssh, FakeApplier(lambda a: True, kinds=("run",))])


def test_dry_run_asks_the_appliers_observe(tmp_path: Path) -> None:
    states = {"fohn": "on", "wind": "off"}
    applied: list[str] = []

    def apply(action: Action) -> bool:
        applied.append(action.host)
        return True

    def observe(action: Action) -> str | None:
        assert isinstance(action, SetPower)
        state = states[action.host]
        return None if state == action.state else f"power is {state}"

    plan = Plan.of("power", [SetPower("fohn", "on"), SetPower("wind", "on")])
    executor = Executor(
        Appliers([FakeApplier(apply, observe=observe)]), Journal(tmp_path), Options(dry_run=True)
    )
    report = executor.apply(plan)
    assert [(r.target, r.outcome, r.reason) for r in report.results] == [
        ("fohn", Outcome.UNCHANGED, None),
        ("wind", Outcome.WOULD_CHANGE, "power is off"),
    ]
    assert applied == []  # a dry run applies nothing


class BootingConnector:
    """A node whose SSH answers only from the ``up_after``-th try; or refuses with ``refusal``."""

    def __init__(self, up_after: int = 0, refusal: Exception | None = None) -> None:
        self.tries = 0
        self.up_after = up_after
        self.refusal = refusal

    def ssh(self, host: str) -> object:
        self.tries += 1
        if self.refusal is not None:
            raise self.refusal
        if self.tries <= self.up_after:
            raise DriverError(f"{host} (10.0.0.1:22): cannot connect: connection refused")
        return self

    def run(self, argv: object, check: bool = True, timeout: float = 0.0) -> object:
        return type("Result", (), {"ok": True})()

    def close(self) -> None:
        pass


def _wait(tmp_path: Path, connector: object, deadline: float) -> tuple[Outcome, int, str]:
    plan = Plan.of("x", [WaitFor("n1", ("true",), deadline=deadline, interval=0.01)])
    appliers = Appliers([SshApplier(connector)])  # type: ignore[arg-type]
    executor = Executor(appliers, Journal(tmp_path), Options(backoff=0.01))
    result = executor.apply(plan).results[0]
    return result.outcome, result.attempts, result.error or ""


def test_wait_for_keeps_polling_a_node_that_is_still_booting(tmp_path: Path) -> None:
    booting = BootingConnector(up_after=3)
    assert _wait(tmp_path, booting, deadline=5.0)[:2] == (Outcome.UNCHANGED, 1)
    assert booting.tries == 4


def test_wait_for_gives_up_at_its_deadline_once_with_the_last_error(tmp_path: Path) -> None:
    start = time.monotonic()
    outcome, attempts, error = _wait(tmp_path, BootingConnector(up_after=10**6), deadline=0.3)
    assert time.monotonic() - start < 2.0  # its own deadline, not retried on top
    assert (outcome, attempts) == (Outcome.FAILED, 1)
    assert "still not true" in error and "connection refused" in error


@pytest.mark.parametrize(
    "refusal",
    [AuthenticationError("n1: key refused"), HostKeyError("n1: host key does not match")],
)
def test_wait_for_does_not_wait_out_a_refusal(tmp_path: Path, refusal: Exception) -> None:
    refusing = BootingConnector(refusal=refusal)
    outcome, attempts, error = _wait(tmp_path, refusing, deadline=30.0)
    assert (outcome, attempts, refusing.tries) == (Outcome.FAILED, 1, 1)
    assert error == str(refusal)


def test_progress_hears_each_step_start_and_end_but_the_report_only_ends(
    tmp_path: Path,
) -> None:
    heard: list[tuple[str, Outcome]] = []
    executor = Executor(
        Appliers([FakeApplier(lambda action: True)]),
        Journal(tmp_path),
        progress=lambda r: heard.append((r.step_id, r.outcome)),
    )
    report = executor.apply(Plan.of("x", [Run("n1", ("a",)), Run("n1", ("b",))]))
    ids = [r.step_id for r in report.results]
    assert heard == [
        (ids[0], Outcome.RUNNING),
        (ids[0], Outcome.CHANGED),
        (ids[1], Outcome.RUNNING),
        (ids[1], Outcome.CHANGED),
    ]
    assert {r.outcome for r in report.results} == {Outcome.CHANGED}


class CheckingConnector:
    """A node whose check command exits ``code`` with ``stderr``, counting the runs."""

    def __init__(self, code: int, stderr: bytes = b"") -> None:
        self.code, self.stderr, self.runs = code, stderr, 0

    def ssh(self, host: str) -> object:
        return self

    def run(
        self, argv: tuple[str, ...], timeout: float = 0.0, label: str | None = None, **_: object
    ) -> object:
        from labctl.drivers.ssh import RemoteCommandError, RunResult, SshTarget

        self.runs += 1
        result = RunResult(argv, self.code, b"", self.stderr)
        if self.code:
            target = SshTarget("n1", "10.0.0.1", Path("/dev/null"))
            raise RemoteCommandError(target, result, label)
        return result

    def close(self) -> None:
        pass


def test_a_check_runs_every_time_changes_nothing_and_fails_in_its_own_words(
    tmp_path: Path,
) -> None:
    from labctl.engine.actions import Check

    plan = Plan.of("x", [Check("n1", ("sh", "-c", "test"), what="the data is ours")])
    passing = CheckingConnector(0)
    for _ in range(2):  # not remembered: the second run checks again
        result = Executor(Appliers([SshApplier(passing)]), Journal(tmp_path)).apply(plan)  # type: ignore[arg-type]
        assert result.results[0].outcome is Outcome.UNCHANGED
    assert passing.runs == 2

    failing = CheckingConnector(3, b"/var/lib/etcd holds another cluster's data")
    report = Executor(Appliers([SshApplier(failing)]), Journal(tmp_path)).apply(plan)  # type: ignore[arg-type]
    (step,) = report.results
    assert (step.outcome, step.attempts, failing.runs) == (Outcome.FAILED, 1, 1)
    assert step.error == (
        "n1: checking the data is ours exited 3: /var/lib/etcd holds another cluster's data"
    )
    dry = Executor(
        Appliers([SshApplier(CheckingConnector(3, b"no"))]),  # type: ignore[arg-type]
        Journal(tmp_path),
        Options(dry_run=True),
    ).apply(plan)
    assert dry.results[0].outcome is Outcome.FAILED  # a dry run fails where the run would


def test_a_failed_step_keeps_the_raw_error_under_its_sentence(tmp_path: Path) -> None:
    def refuse(action: Action) -> bool:
        error = AuthenticationError("n1 BMC (10.0.0.1:623): the BMC refused user 'labctl'")
        error.detail = "[Errno 111] Connection refused"
        raise error

    report = _executor(tmp_path, refuse).apply(Plan.of("x", [SetPower("n1", "on")]))
    (result,) = report.results
    assert result.error == "n1 BMC (10.0.0.1:623): the BMC refused user 'labctl'"
    assert result.as_dict()["error_detail"] == "[Errno 111] Connection refused"
    quiet = _executor(tmp_path, lambda a: (_ for _ in ()).throw(LabctlError("plain")))
    assert quiet.apply(Plan.of("x", [SetPower("n2", "on")])).results[0].error_detail is None


class SurveyingApplier(FakeApplier):
    """Says every file and condition it is asked about is already true; records each survey."""

    def __init__(self) -> None:
        super().__init__(lambda a: a.kind == "run", kinds=("put-file", "run", "wait-for", "check"))
        self.surveys: list[list[str]] = []

    def survey(self, actions: Sequence[Action]) -> Mapping[str, str | None]:
        self.surveys.append([a.kind for a in actions])
        return {a.key: None for a in actions if a.kind != "run"}


def test_one_survey_per_target_reads_its_files_waits_and_checks_together(tmp_path: Path) -> None:
    """Issue 28: a converged plan's target is read once (files, waits and checks), where it
    was read once per kind; its waits and checks are handed over only when every command on
    it is one the journal says ran (else one kind at its turn, as before)."""
    from labctl.engine.actions import Check

    def plan(trigger: str) -> Plan:
        return Plan.of(
            "demo",
            [
                WaitFor("n1", (), what="SSH to answer"),
                Check("n1", ("test", "-d", "/x"), what="a directory"),
                PutFile("n1", "/etc/a", b"a"),
                Run("n1", ("systemctl", "restart", "a"), triggers=(trigger,)),
                WaitFor("n1", ("systemctl", "is-active", "a")),
            ],
        )

    applier = SurveyingApplier()
    journal = Journal(tmp_path)
    first = Executor(Appliers([applier]), journal).apply(plan("v1"))
    assert first.count(Outcome.CHANGED) == 1  # the restart, unknown to the journal
    # the restart will run: the check and the file read first; the wait is not read
    # ahead of it, and once it ran the wait polls for itself
    assert applier.surveys == [["check", "put-file", "run"]]
    applier.surveys.clear()
    again = Executor(Appliers([applier]), journal).apply(plan("v1"))
    assert again.nothing_to_do
    assert applier.surveys == [["check", "put-file", "run", "wait-for"]]


class RefusingCheckConnector(BootingConnector):
    """A node that answers, whose check fails and says why on stderr."""

    def run(self, argv: object, check: bool = True, timeout: float = 0.0) -> object:
        return type(
            "Result",
            (),
            {"ok": False, "stdout": b'{"a": "status document"}\n', "stderr": self.said},
        )()

    said = b"some noise\nkubelet.service is not running (journalctl -u kubelet.service)\n\n"


def test_a_wait_that_runs_out_names_its_checks_last_reason_from_stderr(tmp_path: Path) -> None:
    outcome, _, error = _wait(tmp_path, RefusingCheckConnector(), deadline=0.2)
    assert outcome == Outcome.FAILED
    assert error.endswith(
        "still not true (kubelet.service is not running (journalctl -u kubelet.service))"
    ), error
    assert "status document" not in error  # stdout is a check's output, not its reason


def test_a_wait_whose_check_says_nothing_still_says_it_did_not_pass(tmp_path: Path) -> None:
    quiet = RefusingCheckConnector()
    quiet.said = b""
    _, _, error = _wait(tmp_path, quiet, deadline=0.2)
    assert error.endswith("still not true (the check did not pass)"), error
