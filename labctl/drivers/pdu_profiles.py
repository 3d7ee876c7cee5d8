"""PDU models as data: which OIDs switch an outlet and what the values mean.

Two shapes exist in the field:

* ``per-outlet``: one integer OID per outlet to read (``state_oid``) and one to
  write (``control_oid``), ``{outlet}`` standing for the outlet number.
* ``status-string``: one OID holding every outlet's state as a comma-separated
  string of 1/0, written back whole to switch outlets.

Where each profile's OIDs come from, and how sure we are, is in docs/power.md.
An inventory may override any field (``custom_profile``), or describe a PDU
labctl does not know with profile ``custom``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from labctl.errors import LabctlError


@dataclass(frozen=True)
class PduProfile:
    name: str
    kind: str  # "per-outlet" | "status-string"
    state_oid: str
    control_oid: str
    on_value: int = 1  # written to switch on
    off_value: int = 2
    reboot_value: int | None = None
    state_on: int = 1  # read back meaning on
    state_off: int = 2
    # Other values the state may read, and what the vendor's MIB says they mean.
    fault_states: tuple[tuple[int, str], ...] = ()
    confirmed: bool = True  # checked against the vendor's MIB

    def fault(self, value: int) -> str | None:
        return dict(self.fault_states).get(value)

    def oid(self, template: str, outlet: int) -> str:
        return template.replace("{outlet}", str(outlet))


PROFILES: dict[str, PduProfile] = {
    # PowerNet-MIB rPDU (AP78xx/AP79xx): rPDUOutletStatusOutletState and
    # rPDUOutletControlOutletCommand (immediateOn 1, immediateOff 2, immediateReboot 3).
    "apc-rpdu": PduProfile(
        name="apc-rpdu",
        kind="per-outlet",
        state_oid="1.3.6.1.4.1.318.1.1.12.3.5.1.1.4.{outlet}",
        control_oid="1.3.6.1.4.1.318.1.1.12.3.3.1.1.4.{outlet}",
        on_value=1,
        off_value=2,
        reboot_value=3,
        state_on=1,
        state_off=2,
    ),
    # PowerNet-MIB rPDU2 (AP8xxx): rPDU2OutletSwitchedStatusState (off 1, on 2) and
    # rPDU2OutletSwitchedControlCommand (immediateOn 1, immediateOff 2, immediateReboot 3).
    "apc-rpdu2": PduProfile(
        name="apc-rpdu2",
        kind="per-outlet",
        state_oid="1.3.6.1.4.1.318.1.1.26.9.2.3.1.5.{outlet}",
        control_oid="1.3.6.1.4.1.318.1.1.26.9.2.4.1.5.{outlet}",
        on_value=1,
        off_value=2,
        reboot_value=3,
        state_on=2,
        state_off=1,
    ),
    # Digipower SWH series (enterprise 17420): DigiPower-PDU-MIB's pdu01OutletStatus,
    # one read-write DisplayString "1,1,0,..." for the whole PDU (1 on, 0 off).
    "digipower-swh": PduProfile(
        name="digipower-swh",
        kind="status-string",
        state_oid="1.3.6.1.4.1.17420.1.2.9.1.13.0",
        control_oid="1.3.6.1.4.1.17420.1.2.9.1.13.0",
        on_value=1,
        off_value=0,
        reboot_value=None,
        state_on=1,
        state_off=0,
        fault_states=((-1, "is not available"), (-2, "lost power or its breaker tripped")),
    ),
}

_OVERRIDABLE = ("state_oid", "control_oid", "on_value", "off_value", "reboot_value")


def profile_for(name: str, overrides: Mapping[str, Any] | None = None) -> PduProfile:
    """The named profile with the inventory's overrides applied."""
    fields = {k: v for k, v in (overrides or {}).items() if k in _OVERRIDABLE}
    if name == "custom":
        missing = [
            k for k in ("state_oid", "control_oid", "on_value", "off_value") if k not in fields
        ]
        if missing:
            raise LabctlError(
                f"profile custom needs custom_profile.{', custom_profile.'.join(missing)}"
            )
        base = PduProfile("custom", "per-outlet", "", "", confirmed=False)
        fields.setdefault("state_on", fields["on_value"])
        fields.setdefault("state_off", fields["off_value"])
        return replace(base, **fields)
    if name not in PROFILES:
        raise LabctlError(
            f"unknown PDU profile {name!r}; known: {', '.join(sorted(PROFILES))}, custom"
        )
    profile = PROFILES[name]
    if "on_value" in fields:
        fields.setdefault("state_on", fields["on_value"])
    if "off_value" in fields:
        fields.setdefault("state_off", fields["off_value"])
    return replace(profile, **fields) if fields else profile
