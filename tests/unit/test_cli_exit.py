"""What `labctl` leaves to the process's exit: the collector does not scan it again.

A converged bootstrap spent 0.15-0.2 s after its command had ended, in the
interpreter's shutdown running the cycle collector over every object still alive
(docs/performance.md, `convgap`). The console entry freezes them as the command
ends, whichever way it ends; this runs the real entry in a fresh interpreter and
reads the collector's frozen count as the interpreter begins to exit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import gc, json, sys
sys.argv = ["labctl", *json.loads(sys.argv[1])]
code = None
try:
    from labctl.cli.main import run
    run()
except SystemExit as exc:
    code = exc.code
finally:
    with open(OUT, "w") as f:
        json.dump({"code": code, "frozen": gc.get_freeze_count()}, f)
"""


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["validate", str(ROOT / "inventory.yaml")], 0),
        (["validate", "no-such-inventory.yaml"], 2),  # a user error: message and exit code
    ],
)
def test_the_command_leaves_its_objects_frozen_for_the_exit(
    args: list[str], code: int, tmp_path: Path
) -> None:
    out = tmp_path / "exit.json"
    subprocess.run(
        [sys.executable, "-c", _PROBE.replace("OUT", repr(str(out))), json.dumps(args)],
        cwd=tmp_path,
        capture_output=True,
        check=True,
        timeout=60,
    )
    found = json.loads(out.read_text())
    assert found["code"] == code
    assert found["frozen"] > 10_000  # the modules' objects, not a handful made after
