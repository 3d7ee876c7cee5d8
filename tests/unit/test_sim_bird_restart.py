"""BIRD on a simulated node is not restarted for a change confd already handles.

Once calico-node's confd wrote the ``bird.cfg`` BIRD runs, a server joining (one more
mesh peer in every node's stand-in file) must not restart BIRD on the other nodes: that
drops every session of theirs, where calico-node would only reload its configuration.
The stand-in's restart runs only while BIRD still runs labctl's file; a changed unit
still restarts it. Without confd (the stand-in alone), either change restarts it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from labctl.engine.actions import Run
from labctl.sim import plan_pieces
from labctl.sim.platform import SimPlatform
from labctl.sim.render import bird, calico_node
from tests.unit.test_platform import _ctx


def _runs(actions: Sequence[object]) -> dict[str, tuple[str, ...]]:
    return {" ".join(a.argv): a.triggers for a in actions if isinstance(a, Run) and a.triggers}


def test_with_confd_a_change_of_labctls_file_alone_restarts_bird_only_while_it_runs_that_file() -> (
    None
):
    before = _runs(plan_pieces._restarts("fohn", "peers: 2", "unit", (), confd=True))
    after = _runs(plan_pieces._restarts("fohn", "peers: 3", "unit", (), confd=True))
    moved = [argv for argv in after if before.get(argv) != after[argv]]
    assert moved == [f"sh -c {plan_pieces.RESTART_UNLESS_CONFD}"]
    assert plan_pieces.RESTART_BIRD not in moved[0].split("||")[0]
    # A changed unit restarts BIRD whoever wrote its file.
    unit_changed = _runs(plan_pieces._restarts("fohn", "peers: 2", "unit 2", (), confd=True))
    assert [a for a in unit_changed if before.get(a) != unit_changed[a]] == [
        f"sh -c systemctl daemon-reload && {plan_pieces.RESTART_BIRD}"
    ]


def test_without_confd_a_change_of_labctls_file_restarts_bird() -> None:
    before = _runs(plan_pieces._restarts("fohn", "peers: 2", "unit", (), confd=False))
    after = _runs(plan_pieces._restarts("fohn", "peers: 3", "unit", (), confd=False))
    assert list(after) == [f"sh -c systemctl daemon-reload && {plan_pieces.RESTART_BIRD}"]
    assert before != after


def test_the_guard_restarts_only_when_confds_file_is_not_the_one_bird_runs(
    tmp_path: Path,
) -> None:
    """The guard's shell, run with confd's path and systemctl pointed at stand-ins."""
    confd_file = tmp_path / "bird.cfg"
    log = tmp_path / "restarts"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    (bin_dir / "systemctl").chmod(0o755)
    guard = plan_pieces.RESTART_UNLESS_CONFD.replace(bird.CONFIG_PATH, str(confd_file))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    confd_file.write_text("router id 1.2.3.4;\n")  # labctl's file: no confd mark
    subprocess.run(["sh", "-c", guard], env=env, check=True)
    confd_file.write_text(f"{calico_node.CONFD_MARK}\nrouter id 1.2.3.4;\n")
    subprocess.run(["sh", "-c", guard], env=env, check=True)
    assert log.read_text().splitlines() == [f"restart {calico_node.UNIT_NAME}"]


def test_the_simulated_platform_with_confd_plans_the_two_restarts(tmp_path: Path) -> None:
    sim = SimPlatform(calico_bird="/usr/sbin/bird", calico_node="/c/calico-node")
    ctx = _ctx(tmp_path, sim, "static-pods")
    runs = _runs(list(sim.node_bgp(ctx, ctx.inventory.server("fohn"))))
    assert f"sh -c {plan_pieces.RESTART_UNLESS_CONFD}" in runs
