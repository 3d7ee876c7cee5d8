"""sushy (and requests under it) is imported only when a Redfish BMC is driven.

Start-up time is measured (benchmarks/); this says who may not add to it: building
the power channels and validating an inventory must not import the Redfish client.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REFERENCE


def test_validate_and_the_power_channels_do_not_import_sushy() -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from labctl.inventory import load_inventory\n"
        "import labctl.power.controller, labctl.drivers.redfish\n"
        f"load_inventory(Path({str(REFERENCE)!r}))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sushy', 'requests')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
