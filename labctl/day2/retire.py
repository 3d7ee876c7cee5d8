"""Taking servers out of the running lab: the steps, in order, or the live reason not to.

``labctl reset SERVER`` takes a server out of every component that runs on it and
wipes what labctl put there, so that a later ``labctl bootstrap`` builds it again from
nothing (or, once it is gone from the inventory, never again). What runs is read
live beforehand (``day2/live.py``): the etcd member list and each member's health,
Ceph's monitor map and quorum, its OSD tree and pools, the Kubernetes Nodes, the FRR
switches' BGP neighbours. A component whose layer never ran here (the journal holds
nothing of it) is not asked and has no step.

This module is pure: the inventory, the servers named and those live facts in, the
ordered steps out, or the sentences saying why not. Every guard is decided here,
before anything changes: etcd keeps quorum among the voters that stay and are
healthy; Ceph keeps a monitor quorum among the monitors that stay; no pool is left
on fewer hosts holding OSDs than its ``size`` (failure domain host: each copy on
another host), or ``min_size`` (its I/O would stop); Kubernetes keeps a control-plane
node. A reset of the whole lab
(``--all``) has none of those guards: nothing is left to keep quorum, so no member,
monitor or Node is removed from its peers first (they all go with the wipe), and
nothing live is read. Its one guard is that every server answers SSH (or was wiped
by an earlier reset and not seen since, such as one an interrupted ``--all``
already powered off): a server left unwiped would keep its etcd data, and since a
cluster's and its members' ids come from its token and peer URLs alone, and the next
bootstrap takes up the token that member's data names (the reset forgot the recorded
one: ``etcd/token.py``), the cluster it forms would take that member back with its
old log. Its
confirmation names, server by server, what the wipe destroys there (``wiped``).

Steps are taken in this order, server after server: drain and delete its Node;
remove its etcd member; mark its OSDs out, wait until Ceph says they are safe to
destroy, stop and purge them; stop and remove its monitor; remove its BGP
neighbours from the switches; wipe labctl's units, data and certificates from it;
power it off. A server that does not answer SSH (dead, or cut off at its PDU) is
taken out of its peers all the same, but the steps that need the node are
skipped with a note: no drain (its Node is deleted), no wipe, and its power-off
("fence") accepts a BMC that is dark too. An interrupted reset is resumed by
running it again: the steps are planned from the live facts, so what was done is
no longer there to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from labctl.inventory.export import primary_address
from labctl.inventory.model import Inventory, Server
from labctl.render import ceph as ceph_render
from labctl.render import etcd as etcd_render
from labctl.render.kubernetes import common as kube_common
from labctl.render.monitoring.targets import monitoring_servers


def quorum(voters: int) -> int:
    return voters // 2 + 1


@dataclass(frozen=True)
class EtcdMember:
    name: str
    id: int
    learner: bool
    healthy: bool


@dataclass(frozen=True)
class Pool:
    name: str
    size: int
    min_size: int


@dataclass(frozen=True)
class CephFacts:
    mons: tuple[str, ...]  # in the monitor map
    quorum: tuple[str, ...]  # in quorum now
    osds: dict[str, tuple[int, ...]]  # host -> its OSD ids (the OSD tree)
    pools: tuple[Pool, ...]


@dataclass(frozen=True)
class LiveLab:
    """What runs, as read before planning; None: that component's layer never ran here."""

    etcd: tuple[EtcdMember, ...] | None = None
    ceph: CephFacts | None = None
    nodes: tuple[str, ...] | None = None  # Kubernetes Node names
    # switch -> neighbour addresses in its BGP summary (FRR switches labctl configured)
    bgp: dict[str, tuple[str, ...]] | None = None
    # servers being reset whose SSH does not answer (dead, or cut off at the PDU)
    silent: tuple[str, ...] = ()
    # servers an earlier reset wiped, not seen answering since (its record stands)
    wiped: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One thing done to the lab: ``kind`` on ``target``, for ``server``."""

    server: str
    kind: str
    target: str
    sentence: str

    def as_dict(self) -> dict[str, str]:
        return {"server": self.server, "kind": self.kind, "target": self.target,
                "sentence": self.sentence}  # fmt: skip


@dataclass(frozen=True)
class Retirement:
    servers: tuple[str, ...]
    steps: tuple[Step, ...] = ()
    refusals: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def destroyed(self) -> list[str]:
        """What the confirmation names: every step that removes or wipes something."""
        return [s.sentence for s in self.steps if s.kind not in ("osd-wait", "cordon")]

    def as_dict(self) -> dict[str, object]:
        return {
            "servers": list(self.servers),
            "refused": list(self.refusals),
            "notes": list(self.notes),
            "steps": [s.as_dict() for s in self.steps],
        }


def _names(members: Sequence[str]) -> str:
    return ", ".join(members)


def etcd_refusal(members: Sequence[EtcdMember], leaving: set[str]) -> str | None:
    """Why removing the members named ``leaving`` loses etcd quorum (None: it does not)."""
    gone = [m for m in members if m.name in leaving and not m.learner]
    if not gone:
        return None
    voters = [m for m in members if not m.learner]
    staying = [m for m in voters if m.name not in leaving]
    who = _names([m.name for m in gone])
    if not staying:
        return f"etcd: {who} hold every voting member; removing them would end the cluster"
    up = sum(m.healthy for m in staying)
    need = quorum(len(staying))
    if up < need:
        sick = _names(sorted(m.name for m in staying if not m.healthy))
        return (
            f"etcd: after removing {who}, {len(staying)} voting members need {need} healthy "
            f"and only {up} are (not healthy: {sick})"
        )
    return None


def mon_refusal(ceph: CephFacts, leaving: set[str]) -> str | None:
    """Why removing the monitors named ``leaving`` loses the monitors' quorum."""
    gone = [m for m in ceph.mons if m in leaving]
    if not gone:
        return None
    staying = [m for m in ceph.mons if m not in leaving]
    who = _names(gone)
    if not staying:
        return f"Ceph: {who} run every monitor; removing them would end the cluster"
    up = sum(m in ceph.quorum for m in staying)
    need = quorum(len(staying))
    if up < need:
        out = _names([m for m in staying if m not in ceph.quorum])
        return (
            f"Ceph: after removing the monitor of {who}, {len(staying)} monitors need {need} "
            f"in quorum and only {up} are (out of quorum: {out})"
        )
    return None


def pool_refusals(ceph: CephFacts, leaving: set[str]) -> list[str]:
    """Pools that would be left on fewer hosts with OSDs than their size or min_size."""
    if not any(ceph.osds.get(host) for host in leaving):
        return []
    hosts = sorted(h for h, ids in ceph.osds.items() if ids and h not in leaving)
    who = _names(sorted(h for h in leaving if ceph.osds.get(h)))
    found = []
    for pool in ceph.pools:
        if len(hosts) >= pool.size:
            continue
        if len(hosts) < pool.min_size:
            what = f"its I/O would stop (min_size {pool.min_size}) and its data could be lost"
        else:
            what = "its objects would stay degraded and the OSDs never safe to destroy"
        found.append(
            f"Ceph: pool {pool.name} keeps {pool.size} copies on different hosts (size "
            f"{pool.size}, failure domain host); without {who} only {len(hosts)} host(s) hold "
            f"OSDs ({_names(hosts) or 'none'}): {what}"
        )
    return found


def control_plane_refusal(inventory: Inventory, leaving: set[str]) -> str | None:
    """Why resetting ``leaving`` would take the Kubernetes API down with it."""
    planes = [s.name for s in inventory.with_role("control-plane")]
    if not planes or any(name not in leaving for name in planes):
        return None
    return (
        f"Kubernetes: the control plane runs only on {_names(planes)}; resetting "
        f"{'it' if len(planes) == 1 else 'them'} would take the API down for good (reset the "
        "whole lab with --all instead)"
    )


def _server_steps(inventory: Inventory, server: Server, live: LiveLab) -> list[Step]:
    name = server.name
    steps: list[Step] = []

    def add(kind: str, target: str, sentence: str) -> None:
        steps.append(Step(name, kind, target, sentence))

    silent = name in live.silent
    if live.nodes is not None and name in live.nodes:
        if not silent:  # a dead node's pods cannot be evicted: they go with its Node
            add("cordon", name, f"cordon Node {name} and evict its pods (DaemonSets' stay)")
        add("delete-node", name, f"delete Node {name} from Kubernetes")
    for member in live.etcd or ():
        if member.name == name:
            add("etcd-remove", f"{member.id:x}", f"remove etcd member {name} ({member.id:x})")
    if live.ceph is not None:
        ids = live.ceph.osds.get(name, ())
        if ids:
            osds = " ".join(str(i) for i in ids)
            listed = _names([f"osd.{i}" for i in ids])
            add("osd-out", osds, f"mark {listed} out")
            add("osd-wait", osds, f"wait until Ceph says {listed} are safe to destroy")
            add("osd-purge", osds, f"stop and purge {listed}")
        if name in live.ceph.mons:
            add("mon-remove", name, f"stop and remove Ceph monitor {name}")
    addresses = {a.address for a in server.addresses()}
    for switch, neighbours in sorted((live.bgp or {}).items()):
        for address in neighbours:
            if address in addresses:
                add("bgp-remove", f"{switch} {address}", f"remove BGP neighbour {address} "
                    f"({name}) from switch {switch}")  # fmt: skip
    if silent:  # nothing to wipe through SSH; power off if its BMC still answers
        add("fence", name, f"power {name} off, or find its BMC dark too")
        return steps
    add("wipe", name, wipe_sentence(inventory, server))
    add("power-off", name, f"power {name} off")
    return steps


def wiped(inventory: Inventory, server: Server) -> list[str]:
    """What the wipe (``day2/apply.py``, ``reset-node.sh``) destroys on ``server``, from
    what the inventory runs there: the words the confirmation names it by."""
    found = []
    if server in etcd_render.members(inventory):
        found.append(f"etcd member data ({etcd_render.data_dir(inventory)}, moved aside)")
    if server in kube_common.nodes(inventory):
        plane = " and the control plane" if server in kube_common.control_plane(inventory) else ""
        found.append(f"Kubernetes state (the kubelet{plane}: /var/lib/kubelet, /etc/kubernetes)")
        found.append("Calico's node state (/var/lib/calico, /var/run/calico, its CNI "
                     "configuration)")  # fmt: skip
    if inventory.cluster.ceph is not None:
        daemons = [f"monitor {server.name}"] if server in ceph_render.mons(inventory) else []
        if server in ceph_render.managers(inventory):
            daemons.append(f"manager {server.name}")
        if "ceph-mds" in server.roles:
            daemons.append(f"mds {server.name}")
        devices = [f"osd.{o.id} on {o.device}" for o in ceph_render.osds(inventory)
                   if o.server == server.name]  # fmt: skip
        if devices:
            daemons.append(_names(devices) + " (each device's first MiB zeroed)")
        if daemons:
            found.append(f"Ceph {_names(daemons)} (/var/lib/ceph, /etc/ceph)")
    if server in monitoring_servers(inventory):
        found.append("Prometheus's and Alertmanager's data and configuration")
    found.append("certificates and keys (/etc/ssl/etcd, /etc/kubernetes/ssl)")
    found.append("labctl's units (the monitoring exporters' among them)")
    return found


def wipe_sentence(inventory: Inventory, server: Server) -> str:
    return f"wipe {server.name}: " + "; ".join(wiped(inventory, server))


def dark_refusal(dark: Sequence[tuple[str, str]]) -> str:
    """Why ``--all`` does not go ahead while the servers ``dark`` (name, address) do not
    answer SSH and no reset wiped them."""
    who = _names([f"{name} ({address})" for name, address in dark])
    one = len(dark) == 1
    return (
        f"{who} {'does' if one else 'do'} not answer SSH and no reset has wiped "
        f"{'it' if one else 'them'}: a whole-lab reset wipes every server, and a server "
        "left with its etcd data would bring its old member back into the cluster the next "
        "bootstrap forms (the same token and peer URLs make the same ids); power "
        f"{'it' if one else 'them'} on (`labctl power on "
        f"{' '.join(name for name, _ in dark)}`) or take {'it' if one else 'them'} out of "
        "the inventory, then reset again"
    )


def _whole_lab(inventory: Inventory, servers: Sequence[Server], live: LiveLab) -> Retirement:
    names = tuple(s.name for s in servers)
    dark = [s for s in servers if s.name in live.silent and s.name not in live.wiped]
    if dark:
        found = [(s.name, primary_address(s, inventory) or "no address") for s in dark]
        return Retirement(names, refusals=(dark_refusal(found),))
    steps = []
    notes = [
        "kept: each server's OS, the switches' configuration and, on this machine, the PKI "
        "store and its CA, the sealed secrets and etcd snapshots; `labctl bootstrap` builds "
        "the lab again from nothing with them"
    ]
    for s in servers:
        if s.name in live.silent:  # wiped by an earlier reset: only its power is left
            notes.append(f"{s.name} does not answer SSH: an earlier reset wiped it; it is "
                         "only powered off (or found dark)")  # fmt: skip
            steps.append(Step(s.name, "fence", s.name, f"power {s.name} off, or find its BMC "
                              "dark too"))  # fmt: skip
            continue
        steps.append(Step(s.name, "wipe", s.name, wipe_sentence(inventory, s)))
        steps.append(Step(s.name, "power-off", s.name, f"power {s.name} off"))
    return Retirement(names, tuple(steps), notes=tuple(notes))


def silent_note(name: str, address: str) -> str:
    """What a reset of a server that does not answer leaves undone, as a sentence."""
    return (
        f"{name} does not answer SSH at {address}: its Node is deleted without a drain and "
        "its disks are not wiped (steps that need the node are skipped); a replacement "
        "comes with new disks, a server brought back is wiped by `labctl reset` again"
    )


def plan_reset(
    inventory: Inventory, names: Sequence[str], live: LiveLab, whole_lab: bool = False
) -> Retirement:
    """The steps that reset ``names`` (every server with ``whole_lab``), or the refusals.

    Names the inventory does not have are refused: labctl reaches a server (its
    address, BMC, disks) through the inventory that names it.
    """
    known = {s.name: s for s in inventory.servers}
    if whole_lab:
        names = list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        have = _names(list(known)) or "none"
        return Retirement(
            tuple(names),
            refusals=tuple(
                f"no server named {n!r} in the inventory (servers: {have})" for n in unknown
            ),
        )
    leaving = set(names)
    servers = [known[n] for n in known if n in leaving]  # inventory order
    if whole_lab:
        return _whole_lab(inventory, servers, live)
    refusals: list[str] = []
    if live.nodes is not None:
        refusals += [r for r in [control_plane_refusal(inventory, leaving)] if r]
    if live.etcd is not None:
        refusals += [r for r in [etcd_refusal(live.etcd, leaving)] if r]
    if live.ceph is not None:
        refusals += [r for r in [mon_refusal(live.ceph, leaving)] if r]
        refusals += pool_refusals(live.ceph, leaving)
    if refusals:
        return Retirement(tuple(names), refusals=tuple(refusals))
    notes = []
    for what, fact in (
        ("etcd", live.etcd),
        ("Ceph", live.ceph),
        ("Kubernetes", live.nodes),
        ("the BGP fabric", live.bgp),
    ):
        if fact is None:
            notes.append(f"{what}: its layer has not run here (the journal), nothing to remove")
    for server in servers:
        if server.name in live.silent:
            address = primary_address(server, inventory) or "its address"
            notes.append(silent_note(server.name, address))
    steps = [step for s in servers for step in _server_steps(inventory, s, live)]
    return Retirement(tuple(names), tuple(steps), notes=tuple(notes))
