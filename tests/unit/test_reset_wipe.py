"""What `labctl reset` wipes on a node, by the shipped script itself on a stand-in root.

``Reset._wipe`` hands ``data/scripts/reset-node.sh`` the paths to empty or remove; here
the argv it would send over SSH is taken, its paths moved under a temporary folder,
and the real script run on them (no units: stopping this machine's units is not a
test's business). Issue 26: the pki layer's node-exporter textfile
(``labctl_pki.prom``) went unremoved, so a reset node kept reporting the expiry of
certificates it no longer held.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from labctl.day2.apply import Reset
from labctl.day2.retire import Step
from labctl.inventory import require_inventory
from labctl.pki.placement import TEXTFILE
from tests.conftest import REFERENCE


class Recorder:
    """An SSH connection that records what it is asked to run."""

    def __init__(self) -> None:
        self.argv: tuple[str, ...] = ()

    def run(self, argv: tuple[str, ...], **_: Any) -> None:
        self.argv = argv


def wipe_argv(tmp_path: Path) -> tuple[str, ...]:
    reset = Reset(require_inventory(REFERENCE), tmp_path, tmp_path / "state")
    (tmp_path / "state").mkdir()
    ssh = Recorder()
    reset._ssh = lambda name: ssh  # type: ignore[method-assign]
    reset._wipe(Step("wind", "wipe", "wind", "wipe wind"))
    return ssh.argv


def test_reset_removes_the_pki_textfile_and_keeps_node_exporters_folder(
    tmp_path: Path,
) -> None:
    argv = wipe_argv(tmp_path)
    assert argv[:2] == ("sh", "-c")
    root = tmp_path / "root"
    textfile = root / TEXTFILE.lstrip("/")
    textfile.parent.mkdir(parents=True)
    textfile.write_text('labctl_certificate_not_after_seconds{certificate="ca"} 1\n')
    operators = textfile.parent / "operator.prom"  # not labctl's: it stays
    operators.write_text("x 1\n")
    run_wipe(tmp_path, argv, root)
    assert not textfile.exists()
    assert operators.read_text() == "x 1\n"


def run_wipe(tmp_path: Path, argv: tuple[str, ...], root: Path) -> None:
    """The shipped script on ``argv``'s paths moved under ``root`` (no units stopped)."""
    script, name, data = argv[2], argv[3], argv[4]
    paths = argv[argv.index("--") + 1 : argv.index("--zap")]
    moved = [f"{root}{p}" for p in paths]
    done = subprocess.run(
        ["sh", "-c", script, name, f"{root}{data}", "--", *moved, "--zap"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_reset_removes_calico_nodes_state_and_monitorings_and_keeps_other_cni_configs(
    tmp_path: Path,
) -> None:
    """Measured on the second lab after every layer ran (tests/e2e/test_second_lab.py):
    calico-node's CNI configuration and /var/lib/calico outlived the wipe, and the
    monitoring units started their containers again at the next boot."""
    argv = wipe_argv(tmp_path)
    units = argv[5 : argv.index("--")]
    assert {"labctl-node-exporter.service", "labctl-prometheus.service",
            "labctl-bird-exporter.service"} <= set(units)  # fmt: skip
    root = tmp_path / "root"
    left = {
        "etc/cni/net.d/10-calico.conflist": "{}",
        "etc/cni/net.d/calico-kubeconfig": "x",
        "var/lib/calico/nodename": "wind",
        "var/log/calico/cni/cni.log": "x",
        "var/lib/prometheus/labctl/wal/00000000": "x",
        "etc/prometheus/labctl-prometheus.yml": "x",
    }
    kept = {
        "etc/cni/net.d/87-podman-bridge.conflist": "{}",  # another CNI user's
        "etc/prometheus/operator.yml": "x",  # an operator's own
    }
    for path, text in (left | kept).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    run_wipe(tmp_path, argv, root)
    assert [p for p in left if (root / p).exists()] == []
    assert [p for p in kept if not (root / p).exists()] == []


class StandIns:
    """A platform whose own pieces put a unit and a file on every node."""

    def node_leftovers(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return ("stand-in.service",), ("/etc/stand-in",)


def test_reset_removes_what_the_platforms_stand_ins_put_on_a_node(tmp_path: Path) -> None:
    from labctl.platform import RealPlatform
    from labctl.sim.platform import from_environ

    assert RealPlatform().node_leftovers() == ((), ())  # a real lab's: none
    sim_units, sim_paths = from_environ({}).node_leftovers()
    assert {"labctl-containerd.service", "calico-confd.service", "calico-felix.service",
            "calico-bird.service"} <= set(sim_units)  # fmt: skip
    assert "/etc/calico" in sim_paths
    reset = Reset(require_inventory(REFERENCE), tmp_path, tmp_path / "state")
    reset.platform = StandIns()
    (tmp_path / "state").mkdir()
    ssh = Recorder()
    reset._ssh = lambda name: ssh  # type: ignore[method-assign]
    reset._wipe(Step("wind", "wipe", "wind", "wipe wind"))
    argv = ssh.argv
    assert "stand-in.service" in argv[5 : argv.index("--")]
    root = tmp_path / "root"
    (root / "etc/stand-in/confd").mkdir(parents=True)
    run_wipe(tmp_path, argv, root)
    assert list((root / "etc/stand-in").iterdir()) == []
