"""The BGP fabric's state from what switches and nodes say, against the inventory (pure).

Parses FRR's JSON (``show bgp summary json``, ``show ip route bgp json``) and
BIRD 1.6's ``birdc show protocols`` table (a switch read over SNMP comes in the
same shape from ``bgp4_mib``), and holds them against the sessions
and pod blocks ``topology`` expects: each session from both ends, each node's
block in each peering switch's routing table. What went wrong comes out as
sentences naming the switch, the node and the session.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from labctl.inventory import topology
from labctl.inventory.model import Inventory

ESTABLISHED = "Established"


def frr_documents(text: str, count: int) -> list[str] | None:
    """The ``count`` JSON documents of one ``vtysh -c A -c B ...`` (each command's answer,
    one after another), as texts; None when the output is not exactly that many."""
    decoder = json.JSONDecoder()
    found, at = [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            break
        try:
            _, end = decoder.raw_decode(text, at)
        except ValueError:
            return None
        found.append(text[at:end])
        at = end
    return found if len(found) == count else None


def frr_peers(summary_json: str) -> dict[str, str]:
    """Peer address -> BGP state, from ``show bgp summary json``."""
    data = json.loads(summary_json or "{}")
    family = data.get("ipv4Unicast", data)
    peers = family.get("peers", {}) if isinstance(family, dict) else {}
    return {address: str(peer.get("state", "?")) for address, peer in peers.items()}


def frr_bgp_routes(routes_json: str) -> dict[str, list[str]]:
    """Prefix -> next hops of the BGP routes FRR installed (``show ip route bgp json``)."""
    data = json.loads(routes_json or "{}")
    out: dict[str, list[str]] = {}
    for prefix, entries in data.items():
        for entry in entries:
            if entry.get("protocol") == "bgp" and entry.get("selected") and entry.get("installed"):
                hops = [h.get("ip", "") for h in entry.get("nexthops", []) if h.get("active")]
                out[prefix] = hops
    return out


def bird_protocols(show_protocols: str) -> dict[str, str]:
    """BGP protocol name -> state ("Established", or BIRD's words for why not)."""
    out: dict[str, str] = {}
    for line in show_protocols.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "BGP":
            # name proto table state since [info...]; since may be a date and a time.
            info = " ".join(parts[5:]) if len(parts) > 5 else parts[3]
            if parts[3] == "up" and ESTABLISHED in line:
                info = ESTABLISHED
            out[parts[0]] = info.strip() or parts[3]
    return out


@dataclass(frozen=True)
class SessionState:
    node: str
    peer: str
    peer_address: str
    kind: str
    node_side: str | None  # BIRD's state on the node; None: not read
    peer_side: str | None  # FRR's state on the switch (switch sessions only)

    @property
    def established(self) -> bool | None:
        """None when neither end was read (a real lab's mesh: calico-node's BIRD is
        inside its container), else whether every end that was read says Established."""
        sides = [s for s in (self.node_side, self.peer_side) if s is not None]
        if not sides:
            return None
        return all(s == ESTABLISHED for s in sides)


@dataclass(frozen=True)
class SwitchRoutes:
    switch: str
    learned: dict[str, list[str]]  # prefix -> next hops
    missing: list[str]  # "node block" the switch does not have
    source: str = "ssh-frr"  # how it was read: ssh-frr (FRR's JSON) or snmp (BGP4-MIB)


@dataclass
class FabricStatus:
    sessions: list[SessionState]
    switches: list[SwitchRoutes]
    unreachable: dict[str, str] = field(default_factory=dict)  # device -> why it did not answer

    @property
    def problems(self) -> list[str]:
        out = [f"{device} did not answer: {why}" for device, why in self.unreachable.items()]
        for s in self.sessions:
            if s.established is False:
                sides = []
                if s.node_side is not None:
                    sides.append(f"{s.node} says {s.node_side}")
                if s.peer_side is not None:
                    sides.append(f"{s.peer} says {s.peer_side}")
                out.append(
                    f"session {s.node} - {s.peer} ({s.peer_address}) is down: {'; '.join(sides)}"
                )
        for sw in self.switches:
            if sw.missing:
                out.append(f"{sw.switch} has not learned {', '.join(sw.missing)}")
        return out

    @property
    def unread(self) -> list[str]:
        """Switch sessions that no answer covered: neither the switch (its BGP side is not
        read, LAB121) nor the node (calico-node's BIRD, on a real lab) said a state.
        ``bgp status`` shows them as unknown; bootstrap cannot call them Established."""
        return [
            f"session {s.node} - {s.peer} ({s.peer_address}) was read from neither end "
            f"({s.peer} gives labctl no BGP state: set its bgp_status)"
            for s in self.sessions
            if s.kind == "switch" and s.established is None and s.peer not in self.unreachable
        ]

    @property
    def ok(self) -> bool:
        return not self.problems

    def switch_side(self) -> FabricStatus:
        """The sessions with a switch and the switches' routes only, without the node
        mesh: what can be proven before calico-node's confd has the Node objects (a
        node that just joined is in the others' BIRD configuration only once their
        confd reads its Node's BGP address from the API)."""
        switch = [s for s in self.sessions if s.kind == "switch"]
        return FabricStatus(switch, self.switches, self.unreachable)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "sessions": [{**asdict(s), "established": s.established} for s in self.sessions],
            "switches": [asdict(s) for s in self.switches],
            "unreachable": self.unreachable,
            "problems": self.problems,
        }


def stand_in_blocks_of(inventory: Inventory) -> dict[str, list[str]]:
    """Each node's block as ``topology`` assigns it, the one labctl's own BIRD file
    announces (the simulated lab's stand-in for calico-node)."""
    return {node: [block] for node, block in topology.blocks(inventory).items()}


def assemble(
    inventory: Inventory,
    switch_peers: dict[str, dict[str, str]],  # switch -> peer address -> state
    switch_routes: dict[str, dict[str, list[str]]],  # switch -> prefix -> next hops
    node_protocols: dict[str, dict[str, str]],  # node -> protocol -> state
    unreachable: dict[str, str],
    switch_sources: dict[str, str] | None = None,  # switch -> how it was read
    pod_blocks: dict[str, list[str]] | None = None,  # node -> blocks it must announce
    stand_in_blocks: dict[str, list[str]] | None = None,  # node -> what else will do
) -> FabricStatus:
    """Every expected session and block, with what each end said (absent: not read).

    ``pod_blocks``: the blocks each node announces, where Calico's IPAM chose them
    (``resources.pod_blocks``, on a real lab); None: the ones ``topology`` assigns,
    which the simulated lab's stand-in announces. ``stand_in_blocks``: where a node may
    still run labctl's own BIRD file (the simulated lab before calico-node's confd runs
    there), the blocks that file announces: a switch that learned all of those has
    nothing missing of that node either. A server rebuilt after a reset keeps its
    Calico block on the API (nothing here releases its affinity), yet announces the
    stand-in's until the calico-resources layer starts confd on it (CI, stop 36:
    "leaf1 has not learned cyd's block" while the kubernetes layer still ran on cyd)."""
    sessions = []
    for s in topology.sessions(inventory):
        node_side = (
            node_protocols[s.node].get(s.protocol, "no such protocol")
            if (s.node in node_protocols)
            else None
        )
        peer_side = None
        if s.kind == "switch" and s.peer in switch_peers:
            peer_side = switch_peers[s.peer].get(s.local_address, "not configured")
        sessions.append(SessionState(s.node, s.peer, s.peer_address, s.kind, node_side, peer_side))
    if not inventory.cluster.calico.advertise.pod_blocks:
        pod_blocks = {}
    elif pod_blocks is None:
        pod_blocks = stand_in_blocks_of(inventory)
    routes = []
    for sw in topology.peering_switches(inventory):
        if sw.name not in switch_routes:
            continue
        learned = switch_routes[sw.name]
        peers = {s.node for s in topology.switch_sessions(inventory, sw.name)}
        missing = [
            f"{node}'s block {block}"
            for node, blocks in pod_blocks.items()
            if node in peers and not _announced((stand_in_blocks or {}).get(node), learned)
            for block in blocks
            if block not in learned
        ]
        how = (switch_sources or {}).get(sw.name, "ssh-frr")
        routes.append(SwitchRoutes(sw.name, learned, missing, how))
    return FabricStatus(sessions, routes, unreachable)


def _announced(blocks: list[str] | None, learned: dict[str, list[str]]) -> bool:
    """Whether a switch that ``learned`` these routes has every one of ``blocks`` (none
    given: no)."""
    if not blocks:
        return False
    return all(block in learned for block in blocks)
