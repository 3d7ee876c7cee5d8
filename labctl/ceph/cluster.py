"""The Ceph cluster, asked through its monitors' own ``ceph`` CLI (``CephSession``).

Health, quorum and status are decided here once, for ``labctl ceph status``,
the ceph layer's wait for HEALTH_OK and the power guard alike. Every answer
is Ceph's JSON reduced to what labctl reports (``CephStatus``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from labctl.drivers.ceph import CephCli, CephMon
from labctl.errors import DriverTimeout, LabctlError
from labctl.inventory.model import Inventory
from labctl.render import ceph as render
from labctl.targets import InventoryConnector


@dataclass(frozen=True)
class HealthCheck:
    name: str
    severity: str
    message: str

    def sentence(self) -> str:
        return f"{self.name} ({self.severity}): {self.message}"


@dataclass(frozen=True)
class Health:
    status: str
    checks: tuple[HealthCheck, ...]

    @classmethod
    def decode(cls, answer: dict[str, Any]) -> Health:
        checks = tuple(
            HealthCheck(name, c.get("severity", "?"), c.get("summary", {}).get("message", ""))
            for name, c in sorted(answer.get("checks", {}).items())
        )
        return cls(answer.get("status", "HEALTH_UNKNOWN"), checks)


@dataclass
class CephStatus:
    """What ``labctl ceph status`` shows: decoded from status, quorum_status, osd tree, df."""

    fsid: str
    health: Health
    mons: list[str]
    quorum: list[str]
    osds_by_host: dict[str, dict[str, int]] = field(default_factory=dict)
    pools: list[dict[str, Any]] = field(default_factory=list)
    pgs_by_state: dict[str, int] = field(default_factory=dict)
    num_pgs: int = 0

    @property
    def out_of_quorum(self) -> list[str]:
        return [m for m in self.mons if m not in self.quorum]

    def as_dict(self) -> dict[str, Any]:
        return {
            "fsid": self.fsid,
            "health": self.health.status,
            "checks": [c.__dict__ for c in self.health.checks],
            "mons": self.mons,
            "quorum": self.quorum,
            "out_of_quorum": self.out_of_quorum,
            "osds_by_host": self.osds_by_host,
            "pools": self.pools,
            "pgs": {"total": self.num_pgs, "by_state": self.pgs_by_state},
        }


def decode_status(
    status: dict[str, Any], quorum: dict[str, Any], tree: dict[str, Any], df: dict[str, Any]
) -> CephStatus:
    """Pure: the JSON answers of status, quorum_status, osd tree and df in, the report out.

    (``status`` counts the monitors but does not name them; ``quorum_status`` does.)
    """
    mons = [m["name"] for m in quorum.get("monmap", {}).get("mons", [])]
    nodes = {n["id"]: n for n in tree.get("nodes", [])}
    by_host: dict[str, dict[str, int]] = {}
    for node in tree.get("nodes", []):
        if node.get("type") != "host":
            continue
        osds = [nodes[c] for c in node.get("children", []) if c in nodes]
        by_host[node["name"]] = {
            "osds": len(osds),
            "up": sum(o.get("status") == "up" for o in osds),
            "in": sum(float(o.get("reweight", 0)) > 0 for o in osds),
        }
    pools = [
        {
            "name": p["name"],
            "stored": p.get("stats", {}).get("stored", 0),
            "objects": p.get("stats", {}).get("objects", 0),
            "percent_used": p.get("stats", {}).get("percent_used", 0.0),
        }
        for p in df.get("pools", [])
    ]
    pgmap = status.get("pgmap", {})
    return CephStatus(
        fsid=status.get("fsid", ""),
        health=Health.decode(status.get("health", {})),
        mons=mons,
        quorum=list(quorum.get("quorum_names", status.get("quorum_names", []))),
        osds_by_host=by_host,
        pools=pools,
        pgs_by_state={s["state_name"]: s["count"] for s in pgmap.get("pgs_by_state", [])},
        num_pgs=pgmap.get("num_pgs", 0),
    )


class CephSession:
    def __init__(self, inventory: Inventory, base_dir: Path, timeout: float = 10.0) -> None:
        self.inventory = inventory
        run = render.runtime(inventory)
        mons = [
            CephMon(s.name, tuple(render.reader(inventory, s, "ceph", run)))
            for s in render.mons(inventory)
        ]
        self.cli = CephCli(InventoryConnector(inventory, base_dir), mons, timeout)

    def health(self) -> Health:
        return Health.decode(self.cli.json("health", "detail"))

    def quorum(self) -> tuple[list[str], list[str]]:
        """(monitors in the map, monitors in quorum)."""
        answer = self.cli.json("quorum_status")
        mons = [m["name"] for m in answer.get("monmap", {}).get("mons", [])]
        return mons, list(answer.get("quorum_names", []))

    def status(self) -> CephStatus:
        return decode_status(
            self.cli.json("status"),
            self.cli.json("quorum_status"),
            self.cli.json("osd", "tree"),
            self.cli.json("df"),
        )

    def wait_healthy(self, deadline: float, poll: float = 3.0) -> None:
        """Until HEALTH_OK; a DriverTimeout naming every check that is not OK."""
        end = time.monotonic() + deadline
        last = "no monitor answered yet"
        while True:
            try:
                health = self.health()
                if health.status == "HEALTH_OK":
                    return
                last = f"{health.status}: " + "; ".join(c.sentence() for c in health.checks)
            except LabctlError as exc:
                last = str(exc)
            if time.monotonic() + poll > end:
                raise DriverTimeout(f"Ceph is not healthy after {deadline:g} s: {last}")
            time.sleep(poll)

    def close(self) -> None:
        self.cli.close()

    def __enter__(self) -> CephSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
