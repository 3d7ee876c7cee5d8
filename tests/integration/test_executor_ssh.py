"""The executor applying plans to a real sshd: convergence, dry run, crash and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labctl.engine.actions import PutFile, Run
from labctl.engine.appliers import Appliers, SshApplier
from labctl.engine.executor import Executor, Options, Outcome
from labctl.engine.journal import Journal
from labctl.engine.plan import Plan
from tests.conftest import ROOT
from tests.peers.sshd import SshdPeer, connector, running_sshd

pytestmark = pytest.mark.integration


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshdPeer]:
    with running_sshd(tmp_path / "sshd") as peer:
        yield peer


def test_converges_then_nothing_to_do(sshd: SshdPeer, tmp_path: Path) -> None:
    remote = tmp_path / "node"
    plan = Plan.of(
        "demo",
        [
            PutFile("n1", str(remote / "etc/a.conf"), b"a=1\n"),
            PutFile("n1", str(remote / "etc/key.pem"), b"secret\n", 0o600, secret=True),
            Run("n1", ("touch", str(remote / "ran")), triggers=("v1",)),
        ],
    )
    state = tmp_path / "state"
    conn = connector(sshd)
    try:
        first = Executor(Appliers([SshApplier(conn)]), Journal(state)).apply(plan)
        assert first.ok and first.count(Outcome.CHANGED) == 3
        dry = Executor(Appliers([SshApplier(conn)]), Journal(state), Options(dry_run=True)).apply(
            plan
        )
        assert dry.nothing_to_do
        (remote / "etc/a.conf").write_text("tampered\n")
        dry = Executor(Appliers([SshApplier(conn)]), Journal(state), Options(dry_run=True)).apply(
            plan
        )
        assert [r.reason for r in dry.results if r.outcome is Outcome.WOULD_CHANGE] == [
            "content differs"
        ]
        second = Executor(Appliers([SshApplier(conn)]), Journal(state)).apply(plan)
        assert second.count(Outcome.CHANGED) == 1  # only the tampered file
        third = Executor(Appliers([SshApplier(conn)]), Journal(state)).apply(plan)
        assert third.nothing_to_do
        assert "nothing to do" in third.summary()
    finally:
        conn.close()


APPLY_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from labctl.drivers.ssh import SshTarget
    from labctl.engine.actions import PutFile
    from labctl.engine.appliers import Appliers, SshApplier
    from labctl.engine.executor import Executor, Options
    from labctl.targets import SshConnector
    from labctl.engine.journal import Journal, RunLock
    from labctl.engine.plan import Plan

    host, port, known, key, remote, state, count = sys.argv[1:]
    plan = Plan.of("bulk", [
        PutFile("n1", f"{remote}/f{i:04d}", (f"{i}\\n" * 20000).encode()) for i in range(int(count))
    ])
    target = SshTarget("n1", host, Path(known), port=int(port), identity_file=Path(key))
    with RunLock(Path(state)):
        appliers = Appliers([SshApplier(SshConnector(lambda h: target))])
        executor = Executor(appliers, Journal(Path(state)), Options())
        report = executor.apply(plan)
    print(report.summary())
    sys.exit(0 if report.ok else 1)
    """
)


def test_killed_run_leaves_no_corrupt_file_and_resumes(sshd: SshdPeer, tmp_path: Path) -> None:
    # Killed once 10 files are written, so 15 are left for the resumed run (it was 50:
    # a resumed run's every file is the same proof, and each costs a round trip).
    remote, state, count = tmp_path / "node", tmp_path / "state", 25
    argv = [
        sys.executable,
        "-c",
        APPLY_SCRIPT,
        sshd.host,
        str(sshd.port),
        str(sshd.known_hosts),
        str(sshd.client_key),
        str(remote),
        str(state),
        str(count),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while len(list(remote.glob("f*"))) < 10:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    written = sorted(remote.glob("f*"))
    assert 10 <= len(written) < count, "kill came too late to test a half-done run"
    for path in written:
        i = int(path.name[1:])
        assert path.read_text() == f"{i}\n" * 20000, f"{path.name} is corrupt"
    resumed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert len(list(remote.glob("f*"))) == count
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert "nothing to do" in again.stdout
    time.sleep(0.5)  # the remote shells of the killed run may still be exiting
    assert list(remote.glob(".labctl.*")) == []


def test_file_snapshot_is_not_trusted_after_a_change(sshd: SshdPeer, tmp_path: Path) -> None:
    remote = tmp_path / "node"
    remote.mkdir()
    (remote / "b").write_text("wanted\n")  # already right when the target is observed
    plan = Plan.of(
        "demo",
        [
            PutFile("n1", str(remote / "a"), b"new\n"),
            Run(
                "n1", ("sh", "-c", f"echo clobbered > {remote / 'b'}")
            ),  # changes b behind the plan
            PutFile("n1", str(remote / "b"), b"wanted\n"),
        ],
    )
    conn = connector(sshd)
    try:
        report = Executor(Appliers([SshApplier(conn)]), Journal(tmp_path / "state")).apply(plan)
    finally:
        conn.close()
    assert [r.outcome for r in report.results] == [Outcome.CHANGED] * 3
    assert (remote / "b").read_text() == "wanted\n"


def test_a_converged_plans_files_waits_and_checks_cost_one_round_trip(
    sshd: SshdPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 28: a re-run with nothing to do reads a node's files, waits and checks in one
    round trip, not one per step (nor one per kind, as before); one that does not pass
    yet is waited for by its own step, and after a change in the plan every wait is
    polled by its own step again."""
    from labctl.drivers.ssh import SshSession
    from labctl.engine.actions import Check, WaitFor

    remote = tmp_path / "node"
    remote.mkdir()
    flag = remote / "flag"
    trips: list[str] = []
    real_run = SshSession.run

    after_trip: list[Callable[[], None]] = []  # run once, after the next trip

    def counted(self: SshSession, argv: object, **kwargs: object) -> object:
        trips.append(str(argv))
        result = real_run(self, argv, **kwargs)  # type: ignore[arg-type]
        while after_trip:
            after_trip.pop()()
        return result

    monkeypatch.setattr(SshSession, "run", counted)

    def plan(trigger: str) -> Plan:
        return Plan.of(
            "demo",
            [
                PutFile("n1", str(remote / "a.conf"), b"a=1\n"),
                PutFile("n1", str(remote / "b.conf"), b"b=1\n", 0o600),
                Run("n1", ("touch", str(flag)), triggers=(trigger,)),
                WaitFor("n1", ("test", "-d", str(remote)), deadline=5),
                WaitFor("n1", ("test", "-e", str(flag)), deadline=5),
                WaitFor("n1", ("true",), deadline=5),
                Check("n1", ("test", "-d", str(remote)), what="the node's directory"),
                Check("n1", ("true",), what="true"),
            ],
        )

    state = tmp_path / "state"
    conn = connector(sshd)
    try:
        first = Executor(Appliers([SshApplier(conn)]), Journal(state)).apply(plan("v1"))
        assert first.ok and first.count(Outcome.CHANGED) == 3
        # the files read at once, then written; the run changed the node: each wait and
        # check on its own
        assert len(trips) == 9, trips
        trips.clear()
        again = Executor(Appliers([SshApplier(conn)]), Journal(state)).apply(plan("v1"))
        assert again.nothing_to_do, again.as_dict()
        assert len(trips) == 1, trips  # two files, three waits, two checks: one trip
        # A wait that does not pass at the survey is its own step's to wait for.
        flag.unlink()
        trips.clear()
        late = threading.Timer(0.3, flag.touch)
        after_trip.append(late.start)  # the flag comes once the survey has found it missing
        waited = Executor(Appliers([SshApplier(conn)]), Journal(state)).apply(plan("v1"))
        late.join()
        assert waited.ok and waited.nothing_to_do
        assert len(trips) >= 2  # the survey, the wait polled at least once
    finally:
        conn.close()


def test_a_file_changed_on_the_node_is_found_and_its_wait_runs_after_it_is_put_back(
    sshd: SshdPeer, tmp_path: Path
) -> None:
    """The one-trip survey skips nothing a converged run must find: a file edited on the
    node is rewritten, and the plan's wait (which here records the file as it finds it,
    as a wait that starts a unit would start it on that file) runs only once the file is
    right again, never on the edited one."""
    from labctl.engine.actions import Check, WaitFor

    remote = tmp_path / "node"
    remote.mkdir()
    conf, seen = remote / "unit.conf", remote / "seen"
    plan = Plan.of(
        "demo",
        [
            Check("n1", ("test", "-d", str(remote)), what="the node's directory"),
            PutFile("n1", str(conf), b"wanted\n"),
            PutFile("n1", str(remote / "other.conf"), b"other\n"),
            Run("n1", ("true",), triggers=("v1",)),
            WaitFor("n1", ("sh", "-c", f"cat {conf} >> {seen}"), deadline=5),
        ],
    )
    state = tmp_path / "state"
    conn = connector(sshd)
    try:
        assert Executor(Appliers([SshApplier(conn)]), Journal(state)).apply(plan).ok
        assert Executor(Appliers([SshApplier(conn)]), Journal(state)).apply(plan).nothing_to_do
        assert seen.read_text() == "wanted\n" * 2
        conf.write_text("edited by hand\n")
        fixed = Executor(Appliers([SshApplier(conn)]), Journal(state)).apply(plan)
        assert fixed.ok
        assert [r.outcome for r in fixed.results] == [
            Outcome.UNCHANGED,
            Outcome.CHANGED,
            Outcome.UNCHANGED,
            Outcome.SKIPPED,
            Outcome.UNCHANGED,
        ]
        assert conf.read_text() == "wanted\n"
        assert seen.read_text() == "wanted\n" * 3  # never "edited by hand"
        conf.chmod(0o600)  # the mode alone differs
        again = Executor(Appliers([SshApplier(conn)]), Journal(state)).apply(plan)
        assert again.count(Outcome.CHANGED) == 1 and conf.stat().st_mode & 0o777 == 0o644
        assert seen.read_text() == "wanted\n" * 4
    finally:
        conn.close()
