"""What losing some devices would break, predicted from the inventory alone (pure).

The inventory is the one place that knows which outlet feeds which power supply,
which switch port carries which NIC and which servers hold etcd, Ceph, the control
plane and BGP: so before anyone pulls a plug, `labctl whatif` can say what the
plug takes with it. This module takes the inventory and the failed devices (PDUs,
PDU outlets, switches, servers) and returns data: servers without power or
network, ports gone dark, BGP sessions and pod blocks lost, etcd and Ceph monitor
quorum, each pool's placement and the Kubernetes control plane. It asks no device:
what the lab says now (``LiveFacts``, read by ``labctl/doctor/live.py`` for
``whatif --live``) is folded in by ``refine``, so a member already down counts.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from labctl.errors import UsageError
from labctl.inventory.export import primary_address
from labctl.inventory.model import Inventory, Server
from labctl.inventory.topology import blocks, sessions

POOL_STATES = ("ok", "degraded", "inactive")


@dataclass(frozen=True)
class Failed:
    """One device named by ``--fail``: ``kind`` is pdu, outlet, switch or server."""

    name: str
    kind: str
    pdu: str | None = None
    outlet: int | None = None


@dataclass(frozen=True)
class Down:
    """A server or switch out of service, and why (failed, no power, no network)."""

    name: str
    kind: str  # server, switch
    why: str


@dataclass(frozen=True)
class DarkPort:
    switch: str
    port: str
    why: str  # "switch dark", or "<server> <nic> down" (the far end is gone)


@dataclass(frozen=True)
class LostSession:
    a: str
    b: str
    kind: str  # mesh, reflector, switch
    why: str


@dataclass(frozen=True)
class LostBlock:
    block: str
    node: str
    why: str


@dataclass(frozen=True)
class Quorum:
    """A majority-vote set (etcd, Ceph monitors): members left of those needed."""

    name: str
    members: tuple[str, ...]
    left: tuple[str, ...]
    needed: int

    @property
    def kept(self) -> bool:
        return not self.members or len(self.left) >= self.needed


@dataclass(frozen=True)
class PoolPlacement:
    """A replicated pool, failure domain host: its hosts with OSDs before and after."""

    name: str
    size: int
    min_size: int
    hosts_before: int
    hosts_after: int
    before: str  # ok, degraded, inactive
    after: str


@dataclass(frozen=True)
class ControlPlane:
    members: tuple[str, ...]
    left: tuple[str, ...]
    endpoint: str
    endpoint_holder: str | None  # the server holding the API endpoint's address
    endpoint_up: bool

    @property
    def kept(self) -> bool:
        return bool(self.left) and self.endpoint_up


@dataclass(frozen=True)
class LiveFacts:
    """What the lab said when asked. None: that part was not asked (its layer has not
    run) or did not answer; ``unread`` says which and why."""

    powered_off: tuple[str, ...] = ()  # servers whose BMC says off
    etcd_down: tuple[str, ...] | None = None  # members that do not answer healthy
    mons_out: tuple[str, ...] | None = None  # Ceph monitors outside the quorum
    sessions_down: tuple[tuple[str, str], ...] | None = None  # (node, peer) not Established
    unread: tuple[str, ...] = ()

    def sentences(self) -> list[str]:
        out = [f"{s} is powered off (its BMC says so)" for s in self.powered_off]
        out += [f"etcd member {m} does not answer healthy" for m in self.etcd_down or ()]
        out += [f"Ceph monitor {m} is outside the quorum" for m in self.mons_out or ()]
        out += [f"BGP session {n} - {p} is not Established" for n, p in self.sessions_down or ()]
        return out


@dataclass(frozen=True)
class Prediction:
    failed: tuple[Failed, ...]
    down: tuple[Down, ...]
    dark_ports: tuple[DarkPort, ...]
    sessions: tuple[LostSession, ...]
    blocks: tuple[LostBlock, ...]
    etcd: Quorum
    ceph_monitors: Quorum | None
    pools: tuple[PoolPlacement, ...]
    control_plane: ControlPlane
    notes: tuple[str, ...] = field(default=())
    live: LiveFacts | None = None  # None: from the inventory alone

    def breaks(self) -> list[str]:
        """Sentences for what stops or loses redundancy; empty: nothing lost that matters."""
        out = [f"{d.kind} {d.name} down ({d.why})" for d in self.down]
        for q in (self.etcd, self.ceph_monitors):
            if q is not None and not q.kept:
                out.append(
                    f"{q.name} quorum lost: {len(q.left)} of {len(q.members)} members left, "
                    f"{q.needed} needed"
                )
        for p in self.pools:
            if POOL_STATES.index(p.after) > POOL_STATES.index(p.before):
                out.append(
                    f"pool {p.name} {p.after}: {p.hosts_after} host(s) with OSDs left for "
                    f"size {p.size}, min_size {p.min_size}"
                )
        if not self.control_plane.kept:
            cp = self.control_plane
            why = (
                "no control-plane server left"
                if not cp.left
                else f"the API endpoint {cp.endpoint} ({cp.endpoint_holder}) is down"
            )
            out.append(f"Kubernetes control plane lost: {why}")
        if self.sessions:
            out.append(f"{len(self.sessions)} BGP session(s) lost")
        if self.blocks:
            out.append(
                "pod block(s) unreachable: "
                + ", ".join(f"{b.block} ({b.node})" for b in self.blocks)
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["etcd"]["kept"] = self.etcd.kept
        if self.ceph_monitors is not None:
            data["ceph_monitors"]["kept"] = self.ceph_monitors.kept
        data["control_plane"]["kept"] = self.control_plane.kept
        data["breaks"] = self.breaks()
        return data


def min_size(size: int) -> int:
    """Ceph's default min_size for a replicated pool: size - size/2 (2 of 3)."""
    return size - size // 2


def parse(inventory: Inventory, names: Sequence[str]) -> tuple[Failed, ...]:
    """The devices ``--fail`` names, or a UsageError naming the unknown or repeated one."""
    pdus = {p.name: p for p in inventory.pdus}
    switches = {s.name for s in inventory.switches}
    servers = {s.name for s in inventory.servers}
    known = sorted(pdus) + sorted(switches) + sorted(servers)
    out: list[Failed] = []
    seen: dict[str, str] = {}
    for name in names:
        if name in seen:
            raise UsageError(f"--fail {name} is given twice; name each device once")
        if name in pdus:
            failed = Failed(name, "pdu", pdu=name)
        elif name in switches:
            failed = Failed(name, "switch")
        elif name in servers:
            failed = Failed(name, "server")
        elif ":" in name and name.split(":", 1)[0] in pdus:
            pdu_name, number = name.split(":", 1)
            pdu = pdus[pdu_name]
            if not number.isdigit() or not 1 <= int(number) <= pdu.outlet_count:
                raise UsageError(
                    f"--fail {name}: {pdu_name} has outlets 1 to {pdu.outlet_count} "
                    f"(write {pdu_name}:N)"
                )
            failed = Failed(f"{pdu_name}:{int(number)}", "outlet", pdu_name, int(number))
        else:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise UsageError(
                f"--fail {name}: no PDU, PDU outlet (PDU:N), switch or server of that name"
                f"{hint} (known: {', '.join(known)})"
            )
        if failed.name in seen:
            raise UsageError(f"--fail {name} is given twice ({seen[failed.name]}); name it once")
        seen[failed.name] = name
        out.append(failed)
    for f in out:
        if f.kind == "outlet" and f.pdu in seen:
            raise UsageError(f"--fail {f.name} is part of --fail {f.pdu}; name one of them")
    return tuple(out)


def predict(
    inventory: Inventory, failed: Iterable[Failed], already_off: Iterable[str] = ()
) -> Prediction:
    """What losing ``failed`` breaks, from the inventory's wiring and roles.

    ``already_off``: servers the lab says are powered off now (``refine``'s way in).
    """
    failed = tuple(failed)
    off_now = set(already_off)
    notes: list[str] = []
    dead_pdus = {f.name for f in failed if f.kind == "pdu"}
    dead_outlets = {(f.pdu, f.outlet) for f in failed if f.kind == "outlet"}
    feeds: dict[str, list[tuple[str, int]]] = {}
    for pdu in inventory.pdus:
        for o in pdu.outlets:
            feeds.setdefault(o.device, []).append((pdu.name, o.outlet))

    def unpowered(device: str) -> str | None:
        fed = feeds.get(device, [])
        if fed and all(p in dead_pdus or (p, n) in dead_outlets for p, n in fed):
            return "no power: " + ", ".join(f"{p}:{n}" for p, n in fed)
        return None

    direct = {f.name for f in failed if f.kind in ("switch", "server")}
    down: list[Down] = []
    dark_switches: set[str] = set()
    for sw in inventory.switches:
        why = "failed" if sw.name in direct else unpowered(sw.name)
        if why is not None:
            dark_switches.add(sw.name)
            down.append(Down(sw.name, "switch", why))
    for name in [s.name for s in inventory.servers] + [s.name for s in inventory.switches]:
        if name not in feeds:
            notes.append(f"{name} has no PDU outlet in the inventory: its power is not modelled")

    powered: dict[str, bool] = {}
    for server in inventory.servers:
        why = "failed" if server.name in direct else unpowered(server.name)
        if why is None and server.name in off_now:
            why = "already powered off (live)"
        powered[server.name] = why is None
        if why is None:
            cabled = [n for n in server.nics if n.switch is not None]
            if cabled and all(n.switch in dark_switches for n in cabled):
                why = "no network: " + ", ".join(f"{n.name} on {n.switch}" for n in cabled)
        if why is not None:
            down.append(Down(server.name, "server", why))
    down_servers = {d.name for d in down if d.kind == "server"}

    def live(server: Server, address: str | None) -> bool:
        """The server is up and the NIC holding ``address`` reaches a live switch."""
        if address is None or server.name in down_servers:
            return False
        for nic in server.nics:
            if any(a.address == address for a in nic.addresses):
                return nic.switch is None or nic.switch not in dark_switches
        return True  # an address on no NIC of the inventory: not modelled, kept

    def on(server: Server, network: str | None) -> str | None:
        if network is None:
            return primary_address(server, inventory)
        found = server.addresses(network)
        return found[0].address if found else None

    dark: list[DarkPort] = []
    for sw in inventory.switches:
        if sw.name in dark_switches:
            dark.extend(DarkPort(sw.name, p.name, "switch dark") for p in sw.ports)
    for server in inventory.servers:
        if server.name in down_servers:
            for nic in server.nics:
                if nic.port is not None and nic.switch not in (None, *dark_switches):
                    assert nic.switch is not None
                    dark.append(DarkPort(nic.switch, nic.port, f"{server.name} {nic.name} down"))

    servers = {s.name: s for s in inventory.servers}
    # BGP: one entry per session (the mesh lists each pair from both ends).
    lost: dict[tuple[str, str, str], LostSession] = {}
    alive_sessions: dict[str, int] = {}
    all_sessions: dict[str, int] = {}
    for s in sessions(inventory):
        node_ok = live(servers[s.node], s.local_address)
        if s.kind == "switch":
            peer_ok = s.peer not in dark_switches
            why = (
                f"{s.node} down"
                if s.node in down_servers
                else f"{s.node}'s {s.local_address} dark"
                if not node_ok
                else f"{s.peer} dark"
            )
        else:
            peer_ok = live(servers[s.peer], s.peer_address)
            why = (
                f"{s.node} down"
                if s.node in down_servers
                else f"{s.node}'s {s.local_address} dark"
                if not node_ok
                else f"{s.peer} down"
                if s.peer in down_servers
                else f"{s.peer}'s {s.peer_address} dark"
            )
        all_sessions[s.node] = all_sessions.get(s.node, 0) + 1
        if node_ok and peer_ok:
            alive_sessions[s.node] = alive_sessions.get(s.node, 0) + 1
            continue
        a, b = sorted((s.node, s.peer)) if s.kind != "switch" else (s.node, s.peer)
        kind = "switch" if s.kind == "switch" else "mesh" if s.kind == "mesh" else "reflector"
        lost.setdefault((a, b, kind), LostSession(a, b, kind, why))

    lost_blocks = []
    for node, block in blocks(inventory).items():
        if node in down_servers:
            lost_blocks.append(LostBlock(block, node, f"{node} down"))
        elif all_sessions.get(node) and not alive_sessions.get(node):
            lost_blocks.append(LostBlock(block, node, f"{node} has no BGP session left"))

    def quorum(name: str, role: str, network: str | None) -> Quorum:
        members = inventory.with_role(role)
        return Quorum(
            name,
            tuple(m.name for m in members),
            tuple(m.name for m in members if live(m, on(m, network))),
            len(members) // 2 + 1,
        )

    etcd = quorum("etcd", "etcd", inventory.cluster.etcd.network)
    ceph = inventory.cluster.ceph
    mons = quorum("Ceph monitors", "ceph-mon", ceph.public_network) if ceph else None
    pools: list[PoolPlacement] = []
    if ceph is not None:
        hosts = [
            s for s in inventory.with_role("ceph-osd") if any(d.role == "osd" for d in s.disks)
        ]
        # An OSD serves while its host reaches the public network (monitors, clients)
        # and the cluster network (replication, heartbeats): without either it is marked down.
        nets = [ceph.public_network] + (
            [ceph.cluster_network] if ceph.cluster_network is not None else []
        )
        after = sum(1 for h in hosts if all(live(h, on(h, n)) for n in nets))
        for pool in ceph.pools:
            need = min_size(pool.size)
            pools.append(
                PoolPlacement(
                    pool.name,
                    pool.size,
                    need,
                    len(hosts),
                    after,
                    _pool_state(len(hosts), pool.size, need),
                    _pool_state(after, pool.size, need),
                )
            )
    cps = inventory.with_role("control-plane")
    endpoint = inventory.cluster.kubernetes.api_endpoint.address
    holder = next(
        (s for s in inventory.servers if any(a.address == endpoint for a in s.addresses())), None
    )
    control = ControlPlane(
        tuple(s.name for s in cps),
        tuple(s.name for s in cps if live(s, primary_address(s, inventory))),
        endpoint,
        holder.name if holder else None,
        live(holder, endpoint) if holder is not None else True,
    )
    return Prediction(
        failed,
        tuple(down),
        tuple(dark),
        tuple(lost.values()),
        tuple(lost_blocks),
        etcd,
        mons,
        tuple(pools),
        control,
        tuple(notes),
    )


def refine(inventory: Inventory, prediction: Prediction, live: LiveFacts) -> Prediction:
    """``prediction`` with what the lab says now folded in: a member already down counts.

    Servers already powered off are down with the failed devices (their sessions, blocks
    and roles go with them); etcd members not healthy and monitors outside the quorum are
    not left; sessions not Established are lost, and a node left with none loses its
    block. Pools are refined only through powered-off hosts (OSD states are not read).
    """
    base = predict(inventory, prediction.failed, live.powered_off)

    def less(q: Quorum | None, gone: tuple[str, ...] | None) -> Quorum | None:
        if q is None or not gone:
            return q
        return Quorum(q.name, q.members, tuple(m for m in q.left if m not in gone), q.needed)

    etcd = less(base.etcd, live.etcd_down)
    assert etcd is not None
    lost = {_key(s.a, s.b, s.kind): s for s in base.sessions}
    down_servers = {d.name for d in base.down if d.kind == "server"}
    per_node: dict[str, list[tuple[str, str, str]]] = {}
    not_up = set(live.sessions_down or ())
    for s in sessions(inventory):
        kind = "switch" if s.kind == "switch" else "mesh" if s.kind == "mesh" else "reflector"
        key = _key(s.node, s.peer, kind)
        per_node.setdefault(s.node, []).append(key)
        if (s.node, s.peer) in not_up and key not in lost:
            lost[key] = LostSession(key[0], key[1], kind, "already down (not Established now)")
    lost_blocks = list(base.blocks)
    have = {b.node for b in lost_blocks}
    for node, block in blocks(inventory).items():
        keys = per_node.get(node, [])
        if node not in have and node not in down_servers and keys and all(k in lost for k in keys):
            lost_blocks.append(LostBlock(block, node, f"{node} has no BGP session left"))
    return Prediction(
        base.failed,
        base.down,
        base.dark_ports,
        tuple(lost.values()),
        tuple(lost_blocks),
        etcd,
        less(base.ceph_monitors, live.mons_out),
        base.pools,
        base.control_plane,
        (*base.notes, *live.unread),
        live,
    )


def _key(a: str, b: str, kind: str) -> tuple[str, str, str]:
    x, y = sorted((a, b)) if kind != "switch" else (a, b)
    return (x, y, kind)


def _pool_state(hosts: int, size: int, need: int) -> str:
    if hosts < need:
        return "inactive"
    if hosts < size:
        return "degraded"
    return "ok"
