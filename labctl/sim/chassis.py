"""The simulated server's chassis: what ipmi_sim's ``chassis_control`` sets.

``chassis.sh`` answers reads itself and hands every change here:
``python -m labctl.sim.chassis STATE_DIR set PARM VALUE ...``. Power changes run
the hooks in ``STATE_DIR/hooks.json`` (``{"on": argv, "off": argv}``), which
really start and stop the simulated node; the boot device is kept in
``STATE_DIR/bootdev`` (pxe, disk, bios or none), where the node can read how it
was booted. Standard library only: this runs once per IPMI change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

# ipmi_sim's boot values -> ours (chassis.sh maps them back for reads).
BOOT_NAMES = {"pxe": "pxe", "default": "disk", "bios": "bios", "none": "none", "cdrom": "none"}


def _log(state: Path, message: str) -> None:
    with (state / "chassis.log").open("a") as handle:
        handle.write(f"{time.strftime('%H:%M:%S')} {message}\n")


def _hook(state: Path, name: str) -> list[str] | None:
    path = state / "hooks.json"
    if not path.exists():
        return None
    argv = json.loads(path.read_text()).get(name)
    return list(argv) if argv else None


def _run(state: Path, name: str) -> bool:
    argv = _hook(state, name)
    if argv is None:
        return True
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    _log(state, f"hook {name}: exit {done.returncode} {done.stderr.strip()[-200:]}")
    return done.returncode == 0


def _write(path: Path, value: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value + "\n")
    os.replace(tmp, path)


def set_power(state: Path, on: bool) -> bool:
    ok = _run(state, "on" if on else "off")
    if ok:
        _write(state / "power", "on" if on else "off")
    return ok


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: chassis STATE_DIR set PARM VALUE ...")
        return 1
    state, op, parms = Path(argv[0]), argv[1], argv[2:]
    _log(state, f"{op} {' '.join(parms)}")
    if op == "set":
        pairs = list(zip(parms[::2], parms[1::2], strict=False))
        for parm, value in pairs:
            if parm == "power":
                if not set_power(state, value == "1"):
                    print("power hook failed")
                    return 1
            elif parm == "reset":
                if value == "1" and not (set_power(state, False) and set_power(state, True)):
                    print("reset hook failed")
                    return 1
            elif parm == "shutdown":
                if value == "1" and not set_power(state, False):
                    print("shutdown hook failed")
                    return 1
            elif parm == "boot":
                _write(state / "bootdev", BOOT_NAMES.get(value, "none"))
            elif parm == "identify":
                pass
            else:
                print(f"Invalid parameter: {parm}")
                return 1
        return 0
    print(f"Unknown operation: {op}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
