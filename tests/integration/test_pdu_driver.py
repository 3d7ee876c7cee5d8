"""The PDU driver against snmpd answering from vendor device records, checked with snmpget.

Each profile is driven against the simulated unit whose answers come from the
record written from that vendor's MIB (tests/peers/pdu/), not from the profile:
a profile with a wrong OID or value fails here.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from labctl.drivers.pdu import (
    OutletAction,
    OutletState,
    PduClient,
    PduEndpoint,
)
from labctl.drivers.pdu_profiles import profile_for
from labctl.drivers.snmp import SnmpV2cAuth, SnmpV3Auth
from labctl.errors import AuthenticationError, DriverError, DriverTimeout
from labctl.sim import pdu_agent, pdu_record
from tests.peers.ports import free_udp_port

pytestmark = pytest.mark.integration
AUTH, PRIV, COMMUNITY = "auth-Key-123", "priv-Key-456", "lab-community"


# Each profile, and the model of a real unit it is meant for.
MODELS = {
    "apc-rpdu": "APC AP7920",
    "apc-rpdu2": "APC AP8941",
    "digipower-swh": "Digipower SWH-1023J-08N1",
}
PROFILE: dict[Path, str] = {}


@pytest.fixture(params=sorted(MODELS))
def pdu(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[pdu_agent.PduSpec]:
    marks = tmp_path / "marks"
    marks.mkdir()
    record = pdu_record.for_model(MODELS[request.param], where="test").path
    PROFILE[tmp_path / "pdu"] = request.param
    spec = pdu_agent.PduSpec(
        name="pdu1",
        address="127.0.0.1",
        port=free_udp_port(),
        state_dir=tmp_path / "pdu",
        record=record,
        outlet_count=8,
        community=COMMUNITY,
        username="labctl",
        auth_key=AUTH,
        priv_key=PRIV,
        hooks={
            n: {"on": ("touch", str(marks / f"{n}-on")), "off": ("touch", str(marks / f"{n}-off"))}
            for n in (1, 2)
        },
        reboot_delay=0.5,
    )
    handle = pdu_agent.start(spec)
    try:
        yield spec
    finally:
        handle.stop()


def endpoint(spec: pdu_agent.PduSpec, **changes: object) -> PduEndpoint:
    base: dict[str, object] = {
        "host": spec.address,
        "port": spec.port,
        "auth": SnmpV3Auth("labctl", AUTH, PRIV),
        "profile": profile_for(PROFILE[spec.state_dir]),
        "outlet_count": spec.outlet_count,
        "timeout": 1.0,
        "retries": 1,
        "reboot_delay": 0.5,
    }
    return PduEndpoint(**{**base, **changes})  # type: ignore[arg-type]


def snmpget(spec: pdu_agent.PduSpec, outlet: int) -> str:
    profile = profile_for(PROFILE[spec.state_dir])
    argv = ["snmpget", "-v3", "-l", "authPriv", "-u", "labctl", "-a", "SHA", "-A", AUTH]
    argv += ["-x", "AES", "-X", PRIV, "-Oqv", f"{spec.address}:{spec.port}"]
    argv.append(profile.oid(profile.state_oid, outlet))
    out = subprocess.run(
        argv, capture_output=True, text=True, check=True, env={**os.environ, "MIBS": ""}
    )
    value = out.stdout.strip().strip('"')
    if profile.kind == "status-string":
        value = value.split(",")[outlet - 1]
    return "on" if int(value) == profile.state_on else "off"


def test_off_on_reboot_seen_by_snmpget_and_hooks(pdu: pdu_agent.PduSpec) -> None:
    marks = pdu.state_dir.parent / "marks"

    async def scenario() -> None:
        async with PduClient(endpoint(pdu)) as client:
            assert await client.outlet_state(1) is OutletState.ON
            await client.set_outlet(1, OutletAction.OFF)
            assert await client.outlet_state(1) is OutletState.OFF
            assert snmpget(pdu, 1) == "off"
            assert (marks / "1-off").exists()  # the hook really ran
            await client.set_outlet(1, OutletAction.ON)
            assert snmpget(pdu, 1) == "on" and (marks / "1-on").exists()
            await client.set_outlet(2, OutletAction.REBOOT)
            deadline = time.monotonic() + 5
            while not (marks / "2-on").exists():
                assert time.monotonic() < deadline, "reboot did not switch the outlet back on"
                await asyncio.sleep(0.1)
            assert (marks / "2-off").exists()
            assert await client.outlet_state(2) is OutletState.ON

    asyncio.run(scenario())


def test_v2c_and_eight_outlets_at_once(pdu: pdu_agent.PduSpec) -> None:
    async def scenario() -> dict[int, OutletState]:
        async with PduClient(endpoint(pdu, auth=SnmpV2cAuth(COMMUNITY))) as client:
            return await client.outlet_states(list(range(1, 9)))

    assert asyncio.run(scenario()) == dict.fromkeys(range(1, 9), OutletState.ON)


def test_wrong_key_is_an_authentication_error_without_the_key(pdu: pdu_agent.PduSpec) -> None:
    async def scenario() -> None:
        async with PduClient(
            endpoint(pdu, auth=SnmpV3Auth("labctl", "not-the-key", PRIV))
        ) as client:
            await client.outlet_state(1)

    with pytest.raises(AuthenticationError) as caught:
        asyncio.run(scenario())
    assert "not-the-key" not in str(caught.value) and PRIV not in str(caught.value)


def test_outlet_out_of_range(pdu: pdu_agent.PduSpec) -> None:
    async def scenario() -> None:
        async with PduClient(endpoint(pdu)) as client:
            await client.set_outlet(9, OutletAction.OFF)

    with pytest.raises(DriverError, match="no outlet 9"):
        asyncio.run(scenario())


def test_nobody_answering_times_out_within_the_bound() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        ep = PduEndpoint(
            "127.0.0.1",
            SnmpV3Auth("labctl", AUTH, PRIV),
            profile_for("apc-rpdu"),
            8,
            port=silent.getsockname()[1],
            timeout=0.5,
            retries=1,
        )

        async def scenario() -> None:
            async with PduClient(ep) as client:
                await client.outlet_state(1)

        start = time.monotonic()
        with pytest.raises(DriverTimeout):
            asyncio.run(scenario())
    assert time.monotonic() - start < (ep.retries + 1) * ep.timeout + 1.5


def pdu_at(host: str, port: int) -> PduEndpoint:
    auth = SnmpV3Auth("labctl", AUTH, PRIV)
    return PduEndpoint(host, auth, profile_for("apc-rpdu"), 8, port=port, timeout=2.0, name="pdu1")


def failure(ep: PduEndpoint) -> DriverError:
    async def scenario() -> None:
        async with PduClient(ep) as client:
            await client.set_outlet(3, OutletAction.OFF)

    with pytest.raises(DriverError) as caught:
        asyncio.run(scenario())
    return caught.value


def test_a_port_nobody_listens_on_is_told_at_once_with_the_raw_error() -> None:
    port = free_udp_port()
    start = time.monotonic()
    error = failure(pdu_at("127.0.0.1", port))
    # pysnmp alone would wait out 3 tries of 2 s and say nothing of why.
    assert time.monotonic() - start < 1.5
    assert not isinstance(error, DriverTimeout)
    assert str(error) == (
        f"pdu1 (127.0.0.1:{port}): switching outlet 3 off: connection refused by "
        f"127.0.0.1:{port}: the host is there but nothing listens on that port (the PDU's "
        "SNMP agent is not running, or the port is wrong)"
    )
    assert error.detail == "[Errno 111] Connection refused"


def test_a_datagram_the_kernel_will_not_send_is_told_as_such() -> None:
    # Port 0 is refused by the kernel with EINVAL, the errno a blackhole route gives,
    # without touching any route on this machine.
    error = failure(pdu_at("127.0.0.1", 0))
    assert str(error).startswith(
        "pdu1 (127.0.0.1:0): switching outlet 3 off: the kernel refused to send to 127.0.0.1:0: "
        "a blackhole route covers it"
    )
    assert error.detail == "[Errno 22] Invalid argument"


def snmpget_raw(spec: pdu_agent.PduSpec, oid: str) -> str:
    argv = ["snmpget", "-v3", "-l", "authPriv", "-u", "labctl", "-a", "SHA", "-A", AUTH]
    argv += ["-x", "AES", "-X", PRIV, "-Oqvn", f"{spec.address}:{spec.port}", oid]
    done = subprocess.run(
        argv, capture_output=True, text=True, check=True, env={**os.environ, "MIBS": ""}
    )
    return done.stdout.strip().strip('"')


def test_the_unit_says_what_it_is_as_the_real_model_does(pdu: pdu_agent.PduSpec) -> None:
    record = pdu_record.load(pdu.record)
    assert snmpget_raw(pdu, "1.3.6.1.2.1.1.1.0") == record.sys_descr  # sysDescr.0
    assert snmpget_raw(pdu, "1.3.6.1.2.1.1.2.0") == "." + record.sys_object_id  # sysObjectID.0


def test_a_profile_the_mib_contradicts_fails_against_the_unit(pdu: pdu_agent.PduSpec) -> None:
    # The unit answers from its MIB, so labctl reading the wrong thing is seen here.
    right = profile_for(PROFILE[pdu.state_dir])
    if right.kind == "status-string":
        wrong = replace(right, off_value=2)  # not a token pdu01OutletStatus knows
    else:
        wrong = replace(right, control_oid=right.state_oid)  # the read-only status column

    async def scenario() -> None:
        async with PduClient(endpoint(pdu, profile=wrong)) as client:
            await client.set_outlet(1, OutletAction.OFF)

    with pytest.raises(DriverError, match="refused"):
        asyncio.run(scenario())
