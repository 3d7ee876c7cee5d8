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
    script, name, data = argv[2], argv[3], argv[4]
    paths = argv[argv.index("--") + 1 : argv.index("--zap")]
    root = tmp_path / "root"
    textfile = root / TEXTFILE.lstrip("/")
    textfile.parent.mkdir(parents=True)
    textfile.write_text('labctl_certificate_not_after_seconds{certificate="ca"} 1\n')
    operators = textfile.parent / "operator.prom"  # not labctl's: it stays
    operators.write_text("x 1\n")
    moved = [f"{root}{p}" for p in paths]
    done = subprocess.run(
        ["sh", "-c", script, name, f"{root}{data}", "--", *moved, "--zap"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not textfile.exists()
    assert operators.read_text() == "x 1\n"
