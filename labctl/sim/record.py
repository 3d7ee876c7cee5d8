"""The simulated lab's record, ``STATE/sim.json``, and its one reader.

``labctl sim up`` writes the record as it builds (lab.py); the CLI, ``down``,
``status`` and the PDU feed hook read it. They all go through ``read_record``
so an absent, unreadable or corrupt record is said one way everywhere. It
lives apart from lab.py because the feed hook runs on every outlet switch and
should not import the whole lab builder to read one pid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labctl.errors import LabctlError

STATE_FILE = "sim.json"


def read_record(state: Path) -> dict[str, Any]:
    """What ``up`` recorded in ``state``; a LabctlError when no lab is recorded there."""
    path = state / STATE_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise LabctlError(f"no simulated lab in {state}; run `labctl sim up`") from None
    except PermissionError:
        raise LabctlError(
            f"cannot read {path}: permission denied (`labctl sim up` ran as root: use sudo)"
        ) from None
    except OSError as exc:
        raise LabctlError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise LabctlError(
            f"{path} is damaged (not the record `labctl sim up` writes), so what the lab "
            "made is unknown: remove it by hand (`ip netns list`, `ip route`)"
        )
    return record
