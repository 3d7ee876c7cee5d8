"""Health probes a cold start waits on: each asks one part of the lab the way its status does.

``labctl power restore`` (``restore.py``) knows probes by name only; here each
name is bound to the real question: a switch's SSH port answers, a node's SSH
runs a command, etcd's members answer healthy, the Ceph monitors are in quorum,
the Kubernetes API is ready with every node Ready, every BGP session is
Established with every pod block learned, Ceph reports no HEALTH_ERR. A probe
answers None when healthy and otherwise a sentence; it never raises, so a part
that is still booting is waited for, not fatal. Every question is bounded by
``timeout`` and opens its own connections (a cached one would outlive the node).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from labctl.errors import LabctlError
from labctl.inventory import topology
from labctl.inventory.model import Inventory
from labctl.power.restore import Probe
from labctl.targets import ssh_target, switch_target


def _each(names: Sequence[str], ask: Callable[[str], str | None]) -> str | None:
    """``ask`` for every name in parallel; None when all answer None, else the sentences."""
    if not names:
        return None
    with ThreadPoolExecutor(max_workers=min(16, len(names))) as pool:
        answers = list(pool.map(ask, names))
    wrong = [f"{n}: {a}" for n, a in zip(names, answers, strict=True) if a is not None]
    return "; ".join(wrong) or None


class LabProbes:
    """The probes of one lab, by the names ``plan_tiers`` and ``final_probes`` use."""

    def __init__(
        self,
        inventory: Inventory,
        base_dir: Path,
        *,
        node_query: tuple[str, ...] | None = None,
        switch_platform: str | None = None,
        timeout: float = 3.0,
    ) -> None:
        self.inventory = inventory
        self.base_dir = base_dir
        self.node_query = node_query
        self.switch_platform = switch_platform
        self.timeout = timeout

    def as_mapping(self) -> dict[str, Probe]:
        return {
            "switches": self.switches,
            "servers": self.servers,
            "etcd": self.etcd,
            "ceph-mon": self.ceph_mons,
            "kubernetes": self.kubernetes,
            "bgp": self.bgp,
            "ceph": self.ceph,
        }

    def switches(self, devices: Sequence[str]) -> str | None:
        """The switches labctl talks to (those nodes peer with) answer on their SSH port."""
        talked_to = {s.name for s in topology.peering_switches(self.inventory)}

        def ask(name: str) -> str | None:
            target = switch_target(self.inventory, self.base_dir, name)
            try:
                with socket.create_connection((target.host, target.port), self.timeout):
                    return None
            except OSError as exc:
                return f"no answer on {target.host}:{target.port} ({exc.strerror or exc})"

        return _each([d for d in devices if d in talked_to], ask)

    def servers(self, devices: Sequence[str]) -> str | None:
        """Every server of the tier runs a command over SSH."""
        from labctl.drivers.ssh import SshSession

        def ask(name: str) -> str | None:
            target = replace(
                ssh_target(self.inventory, self.base_dir, name), connect_timeout=self.timeout
            )
            try:
                with SshSession(target) as ssh:
                    ssh.run(("true",), timeout=self.timeout)
                return None
            except (LabctlError, OSError) as exc:
                return f"SSH: {exc}"

        return _each(list(devices), ask)

    def etcd(self, devices: Sequence[str]) -> str | None:
        from labctl.etcd.cluster import EtcdSession

        try:
            with EtcdSession(self.inventory, self.base_dir, timeout=self.timeout) as etcd:
                sick = etcd.unhealthy()
        except LabctlError as exc:
            return str(exc)
        return "; ".join(f"{m}: {why}" for m, why in sick.items()) or None

    def ceph_mons(self, devices: Sequence[str]) -> str | None:
        from labctl.ceph.cluster import CephSession

        try:
            with CephSession(self.inventory, self.base_dir, timeout=self.timeout * 3) as ceph:
                mons, quorum = ceph.quorum()
        except LabctlError as exc:
            return str(exc)
        out = [m for m in mons if m not in quorum]
        return f"monitors out of quorum: {', '.join(out)}" if out or not mons else None

    def ceph(self, devices: Sequence[str]) -> str | None:
        from labctl.ceph.cluster import CephSession

        try:
            with CephSession(self.inventory, self.base_dir, timeout=self.timeout * 3) as ceph:
                health = ceph.health()
        except LabctlError as exc:
            return str(exc)
        if health.status == "HEALTH_ERR":
            return "; ".join(c.sentence() for c in health.checks) or "HEALTH_ERR"
        return None

    def kubernetes(self, devices: Sequence[str]) -> str | None:
        from labctl.kubernetes.api import KubeSession

        kube = KubeSession(self.inventory, self.base_dir, timeout=self.timeout)
        ready, why = kube.readyz()
        if not ready:
            return f"API not ready: {why}"
        try:
            reasons = kube.not_ready_reasons()
        except LabctlError as exc:
            return str(exc)
        return "; ".join(reasons) or None

    def bgp(self, devices: Sequence[str]) -> str | None:
        from labctl.calico.fabric import BgpSession

        try:
            with BgpSession(
                self.inventory, self.base_dir, self.node_query, self.switch_platform
            ) as bgp:
                status = bgp.status()
        except LabctlError as exc:
            return str(exc)
        return None if status.ok else "; ".join(status.problems)
