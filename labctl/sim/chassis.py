"""The simulated server's chassis: what its BMC (ipmi_sim's ``chassis_control``, or the
Redfish emulator's systems driver, ``redfish_system.py``) sets and reads.

For ipmi_sim, ``chassis.sh`` answers reads itself and hands every change here:
``python -m labctl.sim.chassis STATE_DIR set PARM VALUE ...``. Power changes run
the hooks in ``STATE_DIR/hooks.json`` (``{"on": argv, "off": argv}``), which
really start and stop the simulated node; the boot device is kept in
``STATE_DIR/bootdev`` (pxe, disk, bios or none), where the node can read how it
was booted. Standard library only: this runs once per IPMI change.

A fault can be set on a chassis (``ignore``): the requests named in ``STATE_DIR/ignore``
are accepted by the BMC and then come to nothing, as on a server whose OS does not act on
ACPI (``soft``: a hung OS, or one with no ACPI daemon). ``labctl power soft`` must then
escalate (tests/e2e/test_power_restore_lab.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
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


def ignore(state: Path, requests: Iterable[str]) -> None:
    """Make the chassis ignore ``requests`` (``soft``: ACPI soft-off); none clears it."""
    wanted = sorted(set(requests))
    path = state / "ignore"
    if wanted:
        _write(path, " ".join(wanted))
    else:
        path.unlink(missing_ok=True)


def ignored(state: Path) -> set[str]:
    """The requests this chassis ignores (a fault set by ``ignore``)."""
    path = state / "ignore"
    return set(path.read_text().split()) if path.exists() else set()


def _write(path: Path, value: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value + "\n")
    os.replace(tmp, path)


def prepare(
    state: Path,
    power_on: Sequence[str],
    power_off: Sequence[str],
    status_pidfile: Path | None,
    initially_on: bool,
) -> None:
    """Write the chassis's hooks, where its power is read from, and its first power state."""
    (state / "hooks.json").write_text(json.dumps({"on": list(power_on), "off": list(power_off)}))
    status = state / "status_pidfile"
    if status_pidfile is None:
        status.unlink(missing_ok=True)
    else:
        status.write_text(f"{status_pidfile}\n")
    power = state / "power"
    if not power.exists():
        power.write_text("on\n" if initially_on else "off\n")


def powered(state: Path) -> bool:
    """On when the node's pid (the file named in ``status_pidfile``) is a live process;
    without that file, the power state last set (``chassis.sh``'s ``powered``)."""
    status = state / "status_pidfile"
    if status.exists():
        pidfile = Path(status.read_text().strip())
        try:
            pid = pidfile.read_text().strip()
            stat = Path(f"/proc/{int(pid)}/stat").read_text()
        except (OSError, ValueError):
            return False
        return stat.rsplit(") ", 1)[-1][:1] not in ("Z", "")
    power = state / "power"
    return power.exists() and power.read_text().strip() == "on"


def boot_device(state: Path) -> str:
    """The boot device last set (pxe, disk, bios or none); disk when none was."""
    path = state / "bootdev"
    value = path.read_text().strip() if path.exists() else ""
    return value or "disk"


def set_boot_device(state: Path, name: str) -> None:
    _write(state / "bootdev", name)


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
            elif parm == "shutdown" and value == "1" and "soft" in ignored(state):
                _log(state, "soft shutdown ignored (fault: the OS does not act on ACPI)")
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
