"""`labctl bgp status` over SNMP's BGP4-MIB on the simulated lab, against what SSH reads.

The reference lab reads astrid (the Arista, which serves BGP4-MIB and has no FRR
to ask over SSH) over SNMP: ``bgp_status: snmp`` and v3 credentials from the
environment. ``sim up`` gives astrid's namespace net-snmp's snmpd on its
management address with the inventory's credentials, and bgpd its AgentX module;
the calico layer pushes an FRR configuration with ``agentx``. Then ``bgp status``
reads astrid over SNMP and kek-core over SSH: everything up, and astrid's
sessions and routes as SNMP tells them are what its FRR's own JSON (over SSH)
says; a session shut down on astrid is named down, in astrid's words over SNMP.
"""

from __future__ import annotations

import time

import pytest

from labctl.calico import status as parse
from tests.e2e.conftest import SECRETS, Lab, run
from tests.e2e.test_calico_lab import BLOCKS, SWITCHES, UP_WITHIN, fabric, labctl, learned

pytestmark = pytest.mark.e2e

ASTRID = SWITCHES["astrid"]


def walk(oid: str) -> str:
    """net-snmp's own walk of astrid, for a failure's message."""
    done = run(
        "snmpwalk", "-v3", "-l", "authPriv", "-u", "labctl", "-a", "SHA",
        "-A", SECRETS["LABCTL_SWITCH_SNMP_AUTH_KEY"], "-x", "AES",
        "-X", SECRETS["LABCTL_SWITCH_SNMP_PRIV_KEY"], "-On", "-Cc", ASTRID, oid,
    )  # fmt: skip
    return done.stdout + done.stderr


def vtysh_json(lab: Lab, command: str) -> str:
    done = lab.ssh(ASTRID, f"vtysh -c '{command}'")
    assert done.returncode == 0, done.stderr
    return done.stdout


def sessions_with(status: dict[str, object], switch: str) -> dict[str, object]:
    sessions: list[dict[str, object]] = status["sessions"]  # type: ignore[assignment]
    return {s["node"]: s["peer_side"] for s in sessions if s["peer"] == switch}  # type: ignore[misc]


def test_bgp_status_over_snmp_matches_the_ssh_path(lab: Lab) -> None:
    done = labctl(lab, "bootstrap", "--only", "calico", "-o", "json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    start = time.monotonic()
    code, status = fabric(lab)
    took = time.monotonic() - start
    assert code == 0, status["problems"]
    sources = {sw["switch"]: sw["source"] for sw in status["switches"]}
    assert sources == {"kek-core": "ssh-frr", "astrid": "snmp"}
    assert took < UP_WITHIN

    # astrid's sessions and routes over SNMP are what its FRR says over SSH.
    over_ssh = parse.frr_peers(vtysh_json(lab, "show bgp summary json"))
    nodes = {"fohn": "31.31.164.220", "chequita": "31.31.164.221", "wind": "31.31.164.222"}
    over_snmp = sessions_with(status, "astrid")
    assert over_snmp == {n: over_ssh[a] for n, a in nodes.items()}
    assert set(over_snmp.values()) == {"Established"}
    # BGP4-MIB says which prefixes astrid holds paths for, not which it installed: the
    # status can be read in the moment bgpd holds the blocks and zebra has yet to install
    # them (seen on this machine), so ask FRR until its routing table has them too.
    deadline = time.monotonic() + 15
    while True:
        routes = parse.frr_bgp_routes(vtysh_json(lab, "show ip route bgp json"))
        if set(BLOCKS.values()) <= set(routes) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    held = learned(status, "astrid")
    assert set(routes) <= held, walk("1.3.6.1.2.1.15.6.1.6")
    # Held but not installed, at most: a route the switch's connected /28 wins (the
    # ingress /30 the reference lab advertises is longer, so it is installed).
    assert held - set(routes) <= {"31.31.164.208/28"}
    assert set(BLOCKS.values()) <= learned(status, "astrid")

    # A session shut down on astrid: SNMP tells it, bgp status names it.
    shut = lab.ssh(
        ASTRID,
        "vtysh -c 'configure terminal' -c 'router bgp 64514' -c 'neighbor 31.31.164.222 shutdown'",
    )
    assert shut.returncode == 0, shut.stderr
    deadline = time.monotonic() + 10
    while True:
        code, status = fabric(lab)
        if sessions_with(status, "astrid")["wind"] != "Established":
            break
        assert time.monotonic() < deadline, status["problems"]
        time.sleep(0.5)
    assert code == 1
    assert sessions_with(status, "astrid")["wind"] == "Idle"
    assert any("wind - astrid" in p and "astrid says Idle" in p for p in status["problems"])
