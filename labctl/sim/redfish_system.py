"""A Redfish BMC for a simulated server: sushy-tools' emulator with a driver whose power is real.

sushy-tools' Redfish emulator (OpenStack's) speaks the protocol: the service root,
basic auth, the ComputerSystem resource, its ``Reset`` action and boot override. What
a system *is* it leaves to a systems driver. Its fake driver keeps power in a dict
and controls nothing; ``ChassisDriver`` here is that fake driver with the power and
the boot device of the simulated server's chassis (``labctl.sim.chassis``), the same
state directory and hooks ipmi_sim's ``chassis_control`` uses. So ``ForceOff`` really
stops the node, ``On`` really boots it, the power state read is whether the node's
process lives, and the boot device set is the one the node boots from.

``python -m labctl.sim.redfish_system ARGS...`` is sushy-emulator (its own options:
``--config``, ``-i``, ``-p``, ``--ssl-certificate``, ``--ssl-key``) with this driver in
place of the fake one. The emulator chooses its driver from its configuration and
offers no way to name another class, so the launcher puts ``ChassisDriver`` where
the fake driver's class is looked up, in this process only. The configuration's
``LABCTL_SIM_CHASSIS`` names the chassis state directory. Run by the simulated lab
(``redfish_bmc.py``) in the emulator's own process; sushy-tools is imported only here.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from sushy_tools import error
from sushy_tools.emulator.resources.systems import fakedriver

from labctl.sim import chassis

CHASSIS_KEY = "LABCTL_SIM_CHASSIS"

# Redfish BootSourceOverrideTarget <-> the chassis's boot device (what the node reads).
TO_REDFISH = {"pxe": "Pxe", "disk": "Hdd", "bios": "BiosSetup", "none": "None"}
FROM_REDFISH = {v: k for k, v in TO_REDFISH.items()}


def power_steps(reset_type: str, on: bool) -> list[bool]:
    """The chassis power changes a ``ResetType`` makes on a system that is ``on`` (pure).

    A restart or cycle of a system that is off turns it on, as the fake driver does.
    """
    if reset_type in ("On", "ForceOn"):
        return [] if on else [True]
    if reset_type in ("ForceOff", "GracefulShutdown"):
        return [False] if on else []
    if reset_type in ("ForceRestart", "GracefulRestart", "PowerCycle"):
        return [False, True] if on else [True]
    if reset_type == "PushPowerButton":
        return [not on]
    raise error.NotSupportedError(f"ResetType {reset_type} is not supported by this system")


class ChassisDriver(fakedriver.FakeDriver):  # type: ignore[misc]  # sushy-tools is untyped
    """The fake driver, its power and boot device the simulated chassis's."""

    _chassis: Path
    _lock = threading.Lock()  # one power change at a time (the emulator serves in threads)

    @classmethod
    def initialize(cls, config: Any, logger: Any) -> Any:
        super().initialize(config, logger)
        cls._chassis = Path(config[CHASSIS_KEY])
        return cls

    def get_power_state(self, identity: str) -> str:
        self._get(identity)  # an unknown system is NotFound, as the fake driver says
        return "On" if chassis.powered(self._chassis) else "Off"

    def set_power_state(self, identity: str, state: str) -> None:
        self._get(identity)
        if state == "GracefulShutdown" and "soft" in chassis.ignored(self._chassis):
            return  # the OS does not act on it (a fault: chassis.ignore)
        with self._lock:
            for on in power_steps(state, chassis.powered(self._chassis)):
                if not chassis.set_power(self._chassis, on):
                    raise error.FishyError(
                        f"the chassis's power-{'on' if on else 'off'} hook failed "
                        f"({self._chassis / 'chassis.log'})"
                    )

    def get_boot_device(self, identity: str) -> str:
        self._get(identity)
        return TO_REDFISH.get(chassis.boot_device(self._chassis), "Hdd")

    def set_boot_device(self, identity: str, boot_source: str) -> None:
        self._get(identity)
        name = FROM_REDFISH.get(boot_source)
        if name is None:
            raise error.BadRequest(
                f"boot source {boot_source} is not one this system boots from "
                f"({', '.join(FROM_REDFISH)})"
            )
        chassis.set_boot_device(self._chassis, name)


def main(argv: list[str]) -> None:
    from sushy_tools.emulator import main as emulator

    fakedriver.FakeDriver = ChassisDriver
    sys.argv = ["sushy-emulator", "--fake", *argv]
    emulator.main()


if __name__ == "__main__":
    main(sys.argv[1:])
