"""BGP passwords through the calico layer's own plans, written over a real sshd.

The layer plans the reference lab with a password on kek-core's peers; the
executor writes every file of its switch and node plans to a loopback sshd
(each machine under its own directory), as a run does. The password must be in
kek-core's frr.conf and in each node's bird.cfg as its value, and nowhere in
the plans, their JSON, the run's report or the state directory (journal, salt).
A restart that follows those files re-runs when the value changes, and only then.
(The simulated lab proves the sessions: tests/e2e/test_calico_lab.py.)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.engine.actions import PutFile, Run
from labctl.engine.executor import Executor, Options, Outcome
from labctl.engine.journal import Journal
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan
from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory, SecretRef
from labctl.layers.calico import CalicoLayer
from labctl.run import standard_appliers
from labctl.sim.platform import SimPlatform
from tests.conftest import REFERENCE
from tests.peers.sshd import SshdPeer, connector, running_sshd

pytestmark = pytest.mark.integration

ENV = "LABCTL_TEST_BGP_PASSWORD_KEK"
PASSWORD = "kek-md5-Zq7v"  # short, as switch keys are: a plain hash of it would be guessable
BIRD = "/opt/labctl/bird-1.6.8/usr/sbin/bird"


def with_password(inventory: Inventory) -> Inventory:
    """The reference inventory with ``{env: ENV}`` on the nodes' sessions to kek-core."""
    calico = inventory.cluster.calico
    peers = tuple(
        dataclasses.replace(p, password=SecretRef(env=ENV)) if p.switch == "kek-core" else p
        for p in calico.peers
    )
    return dataclasses.replace(
        inventory,
        cluster=dataclasses.replace(
            inventory.cluster, calico=dataclasses.replace(calico, peers=peers)
        ),
    )


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshdPeer]:
    with running_sshd(tmp_path / "sshd") as peer:
        yield peer


def context(tmp_path: Path) -> LayerContext:
    return LayerContext(
        with_password(require_inventory(REFERENCE)),
        REFERENCE,
        tmp_path / "state",
        node_root=str(tmp_path / "machines" / "{node}"),
        platform=SimPlatform(calico_bird=BIRD, switches="frr"),
    )


def files_plan(plans: list[Plan]) -> Plan:
    """The layer's file writes (its restarts and waits need the machines themselves)."""
    return Plan.of(
        "calico: files",
        [s.action for p in plans for s in p.steps if isinstance(s.action, PutFile)],
    )


def run_with(ctx: LayerContext, peer: SshdPeer, plan: Plan, dry_run: bool = False) -> object:
    """``plan`` applied by a run's own appliers, every machine reached on the loopback sshd."""
    with standard_appliers(ctx, connector(peer)) as appliers:
        return Executor(appliers, Journal(ctx.state_dir), Options(dry_run=dry_run)).apply(plan)


def everything_under(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())


def test_the_password_reaches_frr_and_bird_as_its_value_and_nothing_else_holds_it(
    sshd: SshdPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    ctx = context(tmp_path)
    plans = list(CalicoLayer().plans(ctx))
    report = run_with(ctx, sshd, files_plan(plans))
    assert report.ok, report.as_dict()  # type: ignore[attr-defined]
    machines = tmp_path / "machines"

    kek = (machines / "kek-core/etc/frr/frr.conf").read_text()
    assert f" neighbor CALICO password {PASSWORD}\n" in kek
    assert "<secret" not in kek
    astrid = (machines / "astrid/etc/frr/frr.conf").read_text()
    assert "password" not in astrid  # its peers have none
    for node in ("fohn", "chequita", "wind"):
        cfg = (machines / node / "etc/calico/confd/config/bird.cfg").read_text()
        kek_session = cfg.split("protocol bgp Global_31_31_164_210 from bgp_template {")[1]
        assert kek_session.split("}")[0].count(f'password "{PASSWORD}";') == 1, node
        astrid_session = cfg.split("protocol bgp Global_31_31_164_211 from bgp_template {")[1]
        assert "password" not in astrid_session.split("}")[0], node
        assert (machines / node / "etc/calico/confd/config/bird.cfg").stat().st_mode & 0o077 == 0

    # Where it must not be: the plans (tree and JSON), the report, the state directory.
    filled = (machines / "kek-core/etc/frr/frr.conf").read_bytes()
    printed = "".join(p.render_tree() + p.to_json() for p in plans)
    printed += json.dumps(report.as_dict()) + report.summary()  # type: ignore[attr-defined]
    assert PASSWORD not in printed
    assert "environment variable LABCTL_TEST_BGP_PASSWORD_KEK" in printed  # where, not what
    state = everything_under(ctx.state_dir)
    for leak in (
        PASSWORD.encode(),
        hashlib.sha256(PASSWORD.encode()).hexdigest().encode(),
        hashlib.sha256(filled).hexdigest().encode(),  # the file's digest: guessable too
    ):
        assert leak not in state
        assert leak.decode() not in printed
    from labctl.secrets.box import salt_path

    assert salt_path(ctx.state_dir).stat().st_mode & 0o777 == 0o600

    # A dry run compares the files as written (filled in): nothing to do.
    again = run_with(ctx, sshd, files_plan(plans), dry_run=True)
    assert again.nothing_to_do, again.as_dict()  # type: ignore[attr-defined]
    # A new value: kek-core's frr.conf and the nodes' bird.cfg would change, astrid's not.
    monkeypatch.setenv(ENV, "kek-md5-rotated")
    rotated = run_with(ctx, sshd, files_plan(plans), dry_run=True)
    changed = {
        r.target
        for r in rotated.results  # type: ignore[attr-defined]
        if r.outcome is Outcome.WOULD_CHANGE
    }
    assert changed == {"kek-core", "fohn", "chequita", "wind"}


def test_a_restart_following_the_files_reruns_when_the_password_changes(
    sshd: SshdPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restart's triggers are the masked text's digest, the same for any value: the
    sealed digest of the password in its fingerprint is what makes FRR read a new key."""
    monkeypatch.setenv(ENV, PASSWORD)
    ctx = context(tmp_path)
    plans = list(CalicoLayer().plans(ctx))
    restart = next(
        s.action
        for p in plans
        for s in p.steps
        if isinstance(s.action, Run) and s.action.host == "kek-core"
    )
    marker = tmp_path / "restarted"
    # The same step with a harmless command: the host's FRR is not this test's to restart.
    stand_in = dataclasses.replace(restart, argv=("sh", "-c", f"echo x >> {marker}"))
    plan = Plan.of("calico: switches", [stand_in])

    def restarts() -> int:
        return len(marker.read_text().splitlines()) if marker.exists() else 0

    assert run_with(ctx, sshd, plan).ok and restarts() == 1  # type: ignore[attr-defined]
    assert run_with(ctx, sshd, plan).nothing_to_do and restarts() == 1  # type: ignore[attr-defined]
    monkeypatch.setenv(ENV, "kek-md5-rotated")
    assert run_with(ctx, sshd, plan).ok and restarts() == 2  # type: ignore[attr-defined]
    journal = (ctx.state_dir / "journal.jsonl").read_text()
    assert PASSWORD not in journal and "kek-md5-rotated" not in journal
    assert [u.used_at for u in restart.secrets] == ["cluster.calico.peers[0].password"]


def test_a_password_that_is_not_set_fails_its_step_by_name_and_writes_nothing(
    sshd: SshdPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    ctx = context(tmp_path)
    plans = list(CalicoLayer().plans(ctx))  # planning needs no value
    report = run_with(ctx, sshd, files_plan(plans))
    failed = [r for r in report.results if r.outcome is Outcome.FAILED]  # type: ignore[attr-defined]
    assert {r.target for r in failed} == {"kek-core", "fohn", "chequita", "wind"}
    for r in failed:
        assert r.error == (
            f"cluster.calico.peers[0].password: environment variable {ENV} is not set"
        ), r.error
        assert "Traceback" not in (r.error or "")
    assert not (tmp_path / "machines/kek-core/etc/frr/frr.conf").exists()
    assert not (tmp_path / "machines/fohn/etc/calico/confd/config/bird.cfg").exists()
