"""What runs in the lab now, read for ``labctl plan``'s diff and bootstrap's skew preflight.

Two sources, each cheap: the journal of the state directory (which machines labctl
has worked on, and which layers have run at all), and the live APIs the layers'
own sessions already speak (Kubernetes' ``/version`` and Nodes, each etcd member's
status, ``ceph versions`` and the OSD tree from a monitor). A component is asked
only when the journal says its layer has run from this state directory: a lab that
was never bootstrapped has nothing to ask, and a machine that does not answer is
not waited for. Whatever could not be read is said, one sentence each, never
guessed: the diff and the skew rules work from what was read.

The components are asked at once, each in its own thread (a containerised ``ceph``
call alone takes most of a second), and bootstrap's preflight, which needs only the
versions, asks no more than that (``live=False``: no member list, no OSD tree).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.engine.journal import Journal, journal_path, owner, target_of
from labctl.errors import LabctlError
from labctl.inventory.model import Inventory
from labctl.labdiff.skew import Running

if TYPE_CHECKING:
    from labctl.kubernetes.api import KubeSession

# How long one question to a live API may take: a plan must not hang on a lab that is down.
TIMEOUT = 3.0

# The layers whose components have versions, by the component's name in the report.
COMPONENT_LAYERS = {"etcd": "etcd", "kubernetes": "kubernetes", "ceph": "ceph"}

_CEPH_VERSION = re.compile(r"ceph version (\S+)")


@dataclass(frozen=True)
class Journaled:
    """What the journal says: the machines labctl has done work on, and the layers that ran."""

    hosts: frozenset[str] = frozenset()
    layers: frozenset[str] = frozenset()


def read_journal(state_dir: Path) -> Journaled:
    """The journal's machines and layers (nothing when there is no journal; nothing written)."""
    if not journal_path(state_dir).exists():
        return Journaled()
    entries = Journal(state_dir).entries()
    hosts = {target_of(e.key) for e in entries if not e.key.startswith("local:")}
    return Journaled(frozenset(h for h in hosts if h), frozenset(owner(e.layer) for e in entries))


@dataclass
class Observed:
    """What was read of the running lab, and what could not be asked (one sentence each)."""

    journal: Journaled = field(default_factory=Journaled)
    running: Running = field(default_factory=Running)
    # Machines seen live, by where: "kubernetes" (a Node), "etcd" (a member), "ceph" (an OSD host).
    live: dict[str, frozenset[str]] = field(default_factory=dict)
    not_asked: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)


def ceph_versions(answer: object) -> dict[str, tuple[str, ...]]:
    """``ceph versions -f json`` reduced to each daemon kind's versions (pure)."""
    found: dict[str, tuple[str, ...]] = {}
    if not isinstance(answer, dict):
        return found
    for kind, versions in sorted(answer.items()):
        if kind == "overall" or not isinstance(versions, dict):
            continue
        texts = []
        for text in versions:
            match = _CEPH_VERSION.search(str(text))
            if match:
                texts.append(match.group(1))
        if texts:
            found[kind] = tuple(sorted(set(texts)))
    return found


def ceph_hosts(tree: object) -> frozenset[str]:
    """The hosts of ``ceph osd tree -f json`` (pure)."""
    if not isinstance(tree, dict):
        return frozenset()
    return frozenset(
        str(n.get("name"))
        for n in tree.get("nodes", [])
        if isinstance(n, dict) and n.get("type") == "host"
    )


def kubernetes_running(session: KubeSession, seen: Observed) -> Running:
    """The API server's version (``/version``, from whichever answers at the lab's
    endpoint) and each Node's kubelet's, as the API reports them."""
    answer = session.client().get("/version") or {}
    nodes = session.nodes()
    seen.live["kubernetes"] = frozenset(n.name for n in nodes)
    return Running(
        api_servers={session.client().url: str(answer.get("gitVersion", ""))},
        kubelets={n.name: n.kubelet_version for n in nodes if n.kubelet_version},
    )


def _kubernetes(inventory: Inventory, base_dir: Path, seen: Observed, live: bool) -> Running:
    from labctl.kubernetes.api import KubeSession

    return kubernetes_running(KubeSession(inventory, base_dir, TIMEOUT), seen)


def _etcd(inventory: Inventory, base_dir: Path, seen: Observed, live: bool) -> Running:
    from labctl.etcd.cluster import EtcdSession

    with EtcdSession(inventory, base_dir, TIMEOUT) as session:
        states = session.states()
        answered = {s.name: s.status.version for s in states if s.status is not None}
        leader = next((s.name for s in states if s.status and s.status.is_leader), "")
        if not answered:
            raise LabctlError(
                "no member answered: " + "; ".join(f"{s.name}: {s.error}" for s in states)
            )
        for state in states:
            if state.status is None:
                seen.not_asked.append(f"etcd member {state.name}: {state.error}")
        if not live:
            return Running(etcd=answered)
        try:
            seen.live["etcd"] = frozenset(m.name for m in session.members() if m.name)
        except LabctlError as exc:  # the versions were read; the member list was not
            seen.not_asked.append(f"etcd members: {exc}")
    return Running(etcd=answered, etcd_leader=leader)


def _ceph(inventory: Inventory, base_dir: Path, seen: Observed, live: bool) -> Running:
    from labctl.ceph.cluster import CephSession

    with CephSession(inventory, base_dir, TIMEOUT) as session:
        versions = ceph_versions(session.cli.json("versions"))
        if live:
            seen.live["ceph"] = ceph_hosts(session.cli.json("osd", "tree"))
    return Running(ceph=versions)


# Each reader: (inventory, base_dir, what it saw besides versions, live) -> versions.
# ``live``: also which machines are live (the diff's); the preflight asks versions only.
READERS: dict[str, Callable[[Inventory, Path, Observed, bool], Running]] = {
    "etcd": _etcd,
    "kubernetes": _kubernetes,
    "ceph": _ceph,
}


def observe(
    inventory: Inventory,
    base_dir: Path,
    state_dir: Path,
    components: Collection[str] = tuple(READERS),
    live: bool = True,
) -> Observed:
    """Read what runs: the journal, then each of ``components`` whose layer has run, all
    at once; ``live``: also which machines each sees (``plan``'s diff; the preflight
    needs the versions only). What each says comes out in ``components``' order."""
    seen = Observed(journal=read_journal(state_dir))
    asked: list[str] = []
    for component in components:
        layer = COMPONENT_LAYERS[component]
        if layer not in seen.journal.layers:
            seen.not_asked.append(
                f"{component}: not asked: its layer has not run from this state directory "
                "(nothing of it to upgrade yet)"
            )
            continue
        asked.append(component)

    def read(component: str) -> tuple[Observed, Running | LabctlError]:
        own = Observed()
        try:
            return own, READERS[component](inventory, base_dir, own, live)
        except LabctlError as exc:
            return own, exc

    found = Running()
    if not asked:
        return seen
    with ThreadPoolExecutor(max_workers=len(asked), thread_name_prefix="observe") as pool:
        answers = list(pool.map(read, asked))
    for component, (own, part) in zip(asked, answers, strict=True):
        seen.not_asked.extend(own.not_asked)
        seen.live.update(own.live)
        if isinstance(part, LabctlError):
            seen.not_asked.append(f"{component}: could not ask: {part}")
            continue
        seen.asked.append(component)
        found = Running(
            api_servers={**found.api_servers, **part.api_servers},
            kubelets={**found.kubelets, **part.kubelets},
            etcd={**found.etcd, **part.etcd},
            ceph={**found.ceph, **part.ceph},
            etcd_leader=part.etcd_leader or found.etcd_leader,
        )
    seen.running = found
    return seen
