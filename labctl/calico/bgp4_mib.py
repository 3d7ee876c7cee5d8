"""A switch's BGP sessions and learned routes from BGP4-MIB (RFC 4273) rows (pure).

The SNMP driver (``drivers/bgp_snmp.py``) walks ``bgpPeerTable`` and
``bgp4PathAttrTable`` and hands the rows here as OID -> value; this turns them
into what ``status.assemble`` takes from FRR's JSON: peer address -> state
in FRR's words, and prefix -> next hops of the routes the switch chose. So a
switch read over SNMP and one read over SSH are judged by the same code.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

BGP = "1.3.6.1.2.1.15"
PEER_TABLE = f"{BGP}.3.1"  # bgpPeerEntry
PATH_TABLE = f"{BGP}.6.1"  # bgp4PathAttrEntry

# bgpPeerEntry columns.
PEER_STATE = 2
PEER_REMOTE_AS = 9
PEER_ESTABLISHED_TIME = 16
# bgp4PathAttrEntry columns; its index is prefix (4) . prefix length . peer (4).
PATH_NEXT_HOP = 6
PATH_BEST = 13
BEST_TRUE = 2

# bgpPeerState, named as FRR's JSON and BIRD name the same states.
STATES = {
    1: "Idle",
    2: "Connect",
    3: "Active",
    4: "OpenSent",
    5: "OpenConfirm",
    6: "Established",
}

Value = int | str  # integers as int, IpAddress as dotted quad


@dataclass(frozen=True)
class MibPeer:
    address: str
    state: str
    remote_as: int | None
    established_for: int | None  # bgpPeerFsmEstablishedTime, seconds


def _rows(varbinds: Mapping[str, Value], table: str) -> dict[tuple[int, ...], dict[int, Value]]:
    """index -> column -> value of one table's OIDs (others ignored)."""
    prefix = table + "."
    rows: dict[tuple[int, ...], dict[int, Value]] = {}
    for oid, value in varbinds.items():
        oid = oid.lstrip(".")
        if not oid.startswith(prefix):
            continue
        parts = tuple(int(p) for p in oid[len(prefix) :].split("."))
        if len(parts) < 2:
            continue
        rows.setdefault(parts[1:], {})[parts[0]] = value
    return rows


def _quad(parts: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in parts)


def peers(varbinds: Mapping[str, Value]) -> dict[str, MibPeer]:
    """Peer address -> the session as bgpPeerTable has it."""
    out = {}
    for index, row in _rows(varbinds, PEER_TABLE).items():
        # The index is bgpPeerRemoteAddr (RFC 4273); FRR's column says 0.0.0.0 until connected.
        address = _quad(index)
        state = row.get(PEER_STATE)
        name = STATES.get(state, f"state {state}") if isinstance(state, int) else "?"
        remote_as = row.get(PEER_REMOTE_AS)
        established = row.get(PEER_ESTABLISHED_TIME)
        out[address] = MibPeer(
            address,
            name,
            remote_as if isinstance(remote_as, int) else None,
            established if isinstance(established, int) else None,
        )
    return out


def peer_states(varbinds: Mapping[str, Value]) -> dict[str, str]:
    """Peer address -> state, the shape ``status.frr_peers`` gives."""
    return {address: p.state for address, p in peers(varbinds).items()}


def routes(varbinds: Mapping[str, Value]) -> dict[str, list[str]]:
    """Prefix -> next hops of every prefix the switch holds a path for.

    BGP4-MIB has one row per prefix and peer. A peer that sends several paths for
    one prefix (ADD-PATH: calico-node's BIRD does, passing on its mesh peers' routes)
    shows as one of them, picked by the agent, so ``bgp4PathAttrBest`` can read
    false on every row while the switch has a best path from that very peer (seen
    on FRR 8.4). A prefix is therefore learned when the switch holds a path for it;
    its next hops are those of the rows marked best, else of every row. Weaker than
    FRR's ``installed`` (a path whose next hop does not resolve is counted too).
    """
    best: dict[str, list[str]] = {}
    every: dict[str, list[str]] = {}
    for index, row in _rows(varbinds, PATH_TABLE).items():
        if len(index) != 9:
            continue
        prefix = str(ipaddress.ip_network(f"{_quad(index[:4])}/{index[4]}", strict=False))
        hop = row.get(PATH_NEXT_HOP)
        hop_text = _quad(index[5:]) if hop is None else str(hop)
        targets = [every.setdefault(prefix, [])]
        if row.get(PATH_BEST) == BEST_TRUE:
            targets.append(best.setdefault(prefix, []))
        for hops in targets:
            if hop_text not in hops:
                hops.append(hop_text)
    return {prefix: best.get(prefix, hops) for prefix, hops in every.items()}
