"""What the lab says now, for `labctl whatif --live`: who is already off, down or out.

A prediction from the inventory assumes every member is up; a lab where one etcd
member is already stopped loses quorum with one more server, not two. This module
asks, at once and each within a bound (doctor's ``ask_all``), the BMCs for power
states and, where the journal says their layer ran, etcd for member health, the
Ceph monitors for their quorum and the BGP fabric for its sessions, through the
sessions their own status commands use. It returns ``LiveFacts``, plain data that
``labctl/inventory/failure.py``'s ``refine`` folds into the prediction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labctl.doctor.gather import ask_all, layers_run
from labctl.inventory.failure import LiveFacts
from labctl.inventory.model import Inventory

if TYPE_CHECKING:
    from labctl.engine.layer import Platform

BMC_TIMEOUT = 2.0  # seconds per BMC call: a dark BMC must not hold the answer long
SERVICE_TIMEOUT = 3.0  # seconds per etcd member or Ceph monitor ask


def _power(inventory: Inventory, base_dir: Path) -> dict[str, str]:
    from labctl.power.controller import PowerSession

    async def read() -> dict[str, str]:
        session = PowerSession(inventory, base_dir, timeout=BMC_TIMEOUT)
        try:
            states = await asyncio.gather(
                *(session.state(s) for s in inventory.servers), return_exceptions=True
            )
        finally:
            await session.close()
        return {
            s.name: (f"unknown: {st}" if isinstance(st, BaseException) else st)
            for s, st in zip(inventory.servers, states, strict=True)
        }

    return asyncio.run(read())


def _etcd(inventory: Inventory, base_dir: Path) -> tuple[str, ...]:
    from labctl.etcd.cluster import EtcdSession

    with EtcdSession(inventory, base_dir, timeout=SERVICE_TIMEOUT) as session:
        return tuple(session.unhealthy())


def _mons(inventory: Inventory, base_dir: Path) -> tuple[str, ...]:
    from labctl.ceph.cluster import CephSession

    with CephSession(inventory, base_dir, timeout=SERVICE_TIMEOUT) as session:
        mons, quorum = session.quorum()
    return tuple(m for m in mons if m not in quorum)


def _sessions(inventory: Inventory, base_dir: Path, platform: Platform) -> Any:
    from labctl.calico.work import session_for

    with session_for(inventory, base_dir, platform) as session:
        return session.status()


def read_live(
    inventory: Inventory, base_dir: Path, state_dir: Path, platform: Platform, bound: float
) -> LiveFacts:
    """Every ask at once; each part that did not answer within ``bound`` is said in unread."""
    ran = layers_run(state_dir)
    jobs: dict[str, Callable[[], Any]] = {"power": lambda: _power(inventory, base_dir)}
    unread: list[str] = []
    if "etcd" in ran:
        jobs["etcd"] = lambda: _etcd(inventory, base_dir)
    else:
        unread.append("etcd not asked: its layer has not run on this lab (journal)")
    if inventory.cluster.ceph is not None and "ceph" in ran:
        jobs["ceph"] = lambda: _mons(inventory, base_dir)
    elif inventory.cluster.ceph is not None:
        unread.append("Ceph not asked: its layer has not run on this lab (journal)")
    if "calico" in ran:
        jobs["bgp"] = lambda: _sessions(inventory, base_dir, platform)
    else:
        unread.append("BGP not asked: the calico layer has not run on this lab (journal)")
    got = ask_all(jobs, bound)

    off: tuple[str, ...] = ()
    power = got["power"]
    if isinstance(power, BaseException):
        unread.append(f"power states not read: {power}")
    else:
        off = tuple(name for name, state in power.items() if state == "off")
        unread += [
            f"{name}'s power is not known ({state}): not counted as off"
            for name, state in power.items()
            if state not in ("on", "off")
        ]

    def member_set(key: str, what: str) -> tuple[str, ...] | None:
        if key not in got:
            return None
        value = got[key]
        if isinstance(value, BaseException):
            unread.append(f"{what} not read: {value}")
            return None
        assert isinstance(value, tuple)
        return value

    etcd_down = member_set("etcd", "etcd member health")
    mons_out = member_set("ceph", "Ceph monitor quorum")
    down: tuple[tuple[str, str], ...] | None = None
    if "bgp" in got:
        fabric = got["bgp"]
        if isinstance(fabric, BaseException):
            unread.append(f"BGP sessions not read: {fabric}")
        else:
            down = tuple((s.node, s.peer) for s in fabric.sessions if s.established is False)
            unread += [f"BGP: {d} did not answer: {why}" for d, why in fabric.unreachable.items()]
    return LiveFacts(off, etcd_down, mons_out, down, tuple(unread))
