"""The OS a simulated namespace node says it runs: the inventory's, as if installed.

A namespace node shares the host's files (Debian), so the os layer's survey would
see every one as needing an install. Its ``/etc`` is an overlay of its own, so an
``os-release`` naming the inventory's distribution and version is written there
before it first boots: namespace nodes stand for servers installed already, and
only VM nodes (``labctl sim up --vm``) are installed through the boot service.
"""

from __future__ import annotations

from pathlib import Path

from labctl.inventory.model import Inventory
from labctl.sim import node as sim_node

SIM_VERSION = "0.0.0-sim"


def os_release_text(distribution: str, version: str | None) -> str:
    return (
        f'NAME="labctl simulated {distribution}"\n'
        f"ID={distribution}\n"
        f"VERSION_ID={version or SIM_VERSION}\n"
    )


def write_os_release(inventory: Inventory, state: Path, names: list[str]) -> None:
    for name in names:
        server = inventory.server(name)
        path = sim_node.node_dir(state, name) / "upper" / "etc" / "os-release"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(os_release_text(server.os.distribution, server.os.version))
