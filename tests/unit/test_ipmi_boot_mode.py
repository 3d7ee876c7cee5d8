"""The boot flags labctl's IPMI driver sends name the firmware the inventory gives.

ipmi_sim, the simulated lab's BMC, passes only the boot device to its chassis (its
control script reads "boot:pxe"), so no peer here can read the EFI bit back: this test
takes the bytes pyipmi would put on the wire for the driver's request (pyipmi's own
encoder, at the point where the session would send them) and reads them by the IPMI 2.0
specification's table 28-14 (boot flags parameter 5, data 1: bit 7 valid, bit 6
persistent, bit 5 EFI). docs/sim.md says the BMC side of it is unproven here.
"""

from __future__ import annotations

import pytest
from pyipmi.chassis import BootDevice as PyipmiBootDevice
from pyipmi.chassis import boot_options_to_data

from labctl.drivers.ipmi import BmcEndpoint, BootDevice, IpmiClient

VALID, PERSISTENT, EFI = 0x80, 0x40, 0x20


class Wire:
    """Stands where pyipmi's session would send: keeps the boot flags' data bytes."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def set_boot_options(self, device: PyipmiBootDevice, mode: str, persistent: bool) -> None:
        self.sent.append(bytes(boot_options_to_data(device, mode, persistent).array))


def sent_by(boot_mode: str, persistent: bool) -> bytes:
    client = IpmiClient(
        BmcEndpoint(host="192.0.2.1", username="u", password="p", boot_mode=boot_mode)
    )
    wire = Wire()
    client._ipmi = wire  # an open session: connect() keeps it
    client.set_boot_device(BootDevice.PXE, persistent=persistent)
    (data,) = wire.sent
    return data


@pytest.mark.parametrize("persistent", [False, True])
def test_a_uefi_server_gets_the_efi_bit_and_a_legacy_one_does_not(persistent: bool) -> None:
    uefi, legacy = sent_by("uefi", persistent), sent_by("legacy", persistent)
    for data in (uefi, legacy):
        assert data[0] & VALID
        assert bool(data[0] & PERSISTENT) is persistent
        assert (data[1] >> 2) & 0x0F == 0b0001  # data 2 bits 5:2: force PXE
    assert uefi[0] & EFI
    assert not legacy[0] & EFI


def test_the_inventory_default_is_legacy_as_before() -> None:
    assert BmcEndpoint(host="h", username="u", password="p").boot_mode == "legacy"
    assert not sent_by(BmcEndpoint(host="h", username="u", password="p").boot_mode, False)[0] & EFI
