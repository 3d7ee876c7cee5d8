"""PDU profiles and the simulated agent's config (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.drivers.pdu_profiles import PROFILES, profile_for
from labctl.errors import LabctlError
from labctl.sim import pdu_record
from labctl.sim.pdu_agent import PduSpec, render_snmpd_conf


def test_profiles_and_overrides() -> None:
    apc = profile_for("apc-rpdu")
    assert apc.oid(apc.control_oid, 7).endswith(".4.7")
    changed = profile_for("digipower-swh", {"state_oid": "1.3.6.1.4.1.17420.9.9.0", "x": 1})
    assert changed.state_oid == "1.3.6.1.4.1.17420.9.9.0"
    assert changed.control_oid == PROFILES["digipower-swh"].control_oid
    custom = profile_for(
        "custom",
        {
            "state_oid": "1.3.6.1.4.1.9.1.{outlet}",
            "control_oid": "1.3.6.1.4.1.9.2.{outlet}",
            "on_value": 5,
            "off_value": 6,
        },
    )
    assert (custom.state_on, custom.state_off, custom.kind) == (5, 6, "per-outlet")
    with pytest.raises(LabctlError, match="custom_profile"):
        profile_for("custom", {"state_oid": "1.2"})
    with pytest.raises(LabctlError, match="unknown PDU profile"):
        profile_for("nope")


def test_snmpd_conf(tmp_path: Path) -> None:
    record = pdu_record.for_model("APC AP7920", where="test")
    spec = PduSpec(
        "pdu1",
        "10.31.0.5",
        tmp_path,
        record.path,
        8,
        community="c0mm",
        username="labctl",
        auth_key="a" * 8,
        priv_key="p" * 8,
    )
    conf = render_snmpd_conf(spec, record)
    assert "agentAddress udp:10.31.0.5:161" in conf
    assert 'createUser labctl SHA "aaaaaaaa" AES "pppppppp"' in conf
    assert "pass_persist .1.3.6.1.4.1.318 " in conf
    assert "sysObjectID .1.3.6.1.4.1.318.1.3.4.5" in conf  # masterSwitchrPDU


def test_digipower_fault_states_are_named_not_unknown() -> None:
    import asyncio

    from labctl.drivers.pdu import OutletState, PduClient, PduEndpoint
    from labctl.drivers.snmp import SnmpV2cAuth
    from labctl.errors import DriverError

    endpoint = PduEndpoint(
        host="127.0.0.1",
        port=161,
        auth=SnmpV2cAuth("unused"),
        profile=profile_for("digipower-swh"),
        outlet_count=4,
        name="pdu1",
    )
    client = PduClient(endpoint)

    async def status_string(oid: str, doing: str) -> str:  # the PDU's answer, without the network
        return "1,0,-1,-2"

    client._get = status_string  # type: ignore[method-assign]

    async def read(outlet: int) -> OutletState:
        return await client.outlet_state(outlet)

    assert asyncio.run(read(1)) is OutletState.ON
    assert asyncio.run(read(2)) is OutletState.OFF
    with pytest.raises(DriverError, match="outlet 3 is not available"):
        asyncio.run(read(3))
    with pytest.raises(DriverError, match="outlet 4 lost power or its breaker tripped"):
        asyncio.run(read(4))
