"""The inventory's ``snmp`` settings as driver credentials, their secrets resolved.

PDUs (outlets) and switches (BGP4-MIB) share one ``snmp`` shape in the schema;
this is the one place its references become keys, each failure naming the
field it came from, so the two drivers cannot drift apart on it.
"""

from __future__ import annotations

from pathlib import Path

from labctl.drivers.snmp import SnmpV2cAuth, SnmpV3Auth
from labctl.inventory.model import Snmp
from labctl.secrets.references import resolve


def credentials(snmp: Snmp, where: str, base_dir: Path) -> SnmpV3Auth | SnmpV2cAuth:
    """``where``: the settings' place in the inventory (``pdus[0].snmp``), for errors."""
    if snmp.version == "2c":
        assert snmp.community is not None  # the schema requires it
        return SnmpV2cAuth(resolve(snmp.community, used_at=f"{where}.community", base_dir=base_dir))
    assert snmp.auth_key is not None and snmp.priv_key is not None and snmp.username
    return SnmpV3Auth(
        snmp.username,
        resolve(snmp.auth_key, used_at=f"{where}.auth_key", base_dir=base_dir),
        resolve(snmp.priv_key, used_at=f"{where}.priv_key", base_dir=base_dir),
        snmp.auth_protocol,
        snmp.priv_protocol,
    )
