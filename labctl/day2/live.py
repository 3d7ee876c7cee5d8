"""What runs in the lab, read before a reset is planned (``day2/retire.py``'s ``LiveLab``).

The journal says which layers ever ran here; each of those components is then
asked live: etcd its member list and every member's health, Ceph its monitor
map, quorum, OSD tree and pools, Kubernetes its Nodes, each FRR switch labctl
configured its BGP summary. A component whose layer ran but that does not
answer makes the reset refuse: a removal that cannot see the quorum it must
keep does not guess.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from labctl.day2.retire import CephFacts, EtcdMember, LiveLab, Pool
from labctl.engine.journal import Journal
from labctl.errors import LabctlError
from labctl.inventory.export import primary_address
from labctl.inventory.model import Inventory


class Unreadable(LabctlError):
    """A component that runs here (the journal says so) did not answer."""


def layers_run(state_dir: Path) -> set[str]:
    """The layers the journal holds applied steps of."""
    if not (state_dir / "journal.jsonl").exists():
        return set()
    return Journal(state_dir).layers()


def read_etcd(inventory: Inventory, base_dir: Path) -> tuple[EtcdMember, ...]:
    from labctl.etcd.cluster import EtcdSession

    with EtcdSession(inventory, base_dir, timeout=3.0) as session:
        members = session.members()
        sick = session.unhealthy()
    return tuple(
        EtcdMember(m.name, m.id, m.is_learner, m.name not in sick and bool(m.name)) for m in members
    )


def decode_ceph(quorum: Any, tree: Any, pools: Any) -> CephFacts:
    """Pure: ``quorum_status``, ``osd tree`` and ``osd pool ls detail`` JSON in."""
    mons = tuple(m["name"] for m in quorum.get("monmap", {}).get("mons", []))
    nodes = {n["id"]: n for n in tree.get("nodes", [])}
    osds = {
        n["name"]: tuple(sorted(c for c in n.get("children", []) if c in nodes))
        for n in tree.get("nodes", [])
        if n.get("type") == "host"
    }
    found = tuple(
        Pool(p["pool_name"], int(p.get("size", 0)), int(p.get("min_size", 0))) for p in pools or []
    )
    return CephFacts(mons, tuple(quorum.get("quorum_names", [])), osds, found)


def read_ceph(inventory: Inventory, base_dir: Path) -> CephFacts:
    from labctl.ceph.cluster import CephSession

    with CephSession(inventory, base_dir) as session:
        return decode_ceph(
            session.cli.json("quorum_status"),
            session.cli.json("osd", "tree"),
            session.cli.json("osd", "pool", "ls", "detail"),
        )


def read_nodes(inventory: Inventory, base_dir: Path) -> tuple[str, ...]:
    from labctl.kubernetes.api import KubeSession

    return tuple(n.name for n in KubeSession(inventory, base_dir).nodes())


def read_bgp(
    inventory: Inventory, base_dir: Path, switch_platform: str | None
) -> dict[str, tuple[str, ...]]:
    from labctl.calico import status as parse
    from labctl.calico.fabric import FRR_SUMMARY
    from labctl.inventory import topology
    from labctl.targets import InventoryConnector

    found = {}
    connector = InventoryConnector(inventory, base_dir)
    try:
        for switch in topology.peering_switches(inventory):
            if (switch_platform or switch.platform) != "frr":
                continue
            summary = connector.ssh(switch.name).run(FRR_SUMMARY, timeout=10.0).text()
            found[switch.name] = tuple(parse.frr_peers(summary))
    finally:
        connector.close()
    return found


def silent(inventory: Inventory, names: list[str], wait: float = 3.0) -> tuple[str, ...]:
    """The servers named whose SSH port does not accept a connection within ``wait``,
    all asked at once (a whole lab of dead servers costs one ``wait``, not one each)."""

    def answers(name: str) -> bool:
        server = next((s for s in inventory.servers if s.name == name), None)
        address = primary_address(server, inventory) if server is not None else None
        if address is None:
            return True
        try:
            with socket.create_connection((address, inventory.lab.ssh.port), timeout=wait):
                return True
        except OSError:
            return False

    if not names:
        return ()
    with ThreadPoolExecutor(max_workers=min(16, len(names))) as pool:
        return tuple(n for n, ok in zip(names, pool.map(answers, names), strict=True) if not ok)


def read_whole_lab(inventory: Inventory, state_dir: Path) -> LiveLab:
    """What ``--all`` needs: which servers do not answer SSH, and which of those an
    earlier reset wiped (its record in the state directory; gone once the os survey
    sees the server answer again). Nothing else is asked: nothing stays to keep quorum."""
    from labctl.os import survey

    names = [s.name for s in inventory.servers]
    return LiveLab(
        silent=silent(inventory, names),
        wiped=tuple(n for n in names if survey.reset_record(state_dir, n).exists()),
    )


def read_live(
    inventory: Inventory,
    base_dir: Path,
    state_dir: Path,
    switch_platform: str | None,
    resetting: list[str] | None = None,
) -> LiveLab:
    """Every component whose layer ran here, asked; ``Unreadable`` naming one that
    did not answer."""
    ran = layers_run(state_dir)

    def ask(what: str, layer: str, read: Any) -> Any:
        if layer not in ran:
            return None
        try:
            return read()
        except LabctlError as exc:
            raise Unreadable(
                f"cannot read what {what} runs ({exc}); refusing to remove anything from a "
                "lab whose quorum cannot be seen"
            ) from None

    return LiveLab(
        etcd=ask("etcd", "etcd", lambda: read_etcd(inventory, base_dir)),
        ceph=ask("Ceph", "ceph", lambda: read_ceph(inventory, base_dir))
        if inventory.cluster.ceph is not None
        else None,
        nodes=ask("Kubernetes", "kubernetes", lambda: read_nodes(inventory, base_dir)),
        bgp=ask(
            "the switches' BGP",
            "calico",
            lambda: read_bgp(inventory, base_dir, switch_platform),
        ),
        silent=silent(inventory, resetting or []),
    )
