"""How labctl reaches each server over SSH, as the inventory says."""

from __future__ import annotations

import os
from pathlib import Path

from labctl.drivers.ssh import SshTarget
from labctl.engine.executor import SshConnector
from labctl.errors import LabctlError
from labctl.inventory.export import primary_address
from labctl.inventory.model import Inventory

DEFAULT_KNOWN_HOSTS = Path(".labctl/known_hosts")


def ssh_target(inventory: Inventory, base_dir: Path, name: str) -> SshTarget:
    try:
        server = inventory.server(name)
    except KeyError:
        raise LabctlError(f"no server named {name} in the inventory") from None
    address = primary_address(server, inventory)
    if address is None:
        raise LabctlError(f"{name} has no public or node address to reach it on")
    ssh = inventory.lab.ssh
    # The environment may point labctl elsewhere, e.g. at the simulated lab
    # (`eval "$(labctl sim env)"`), without editing the inventory.
    known = os.environ.get("LABCTL_SSH_KNOWN_HOSTS") or ssh.known_hosts
    known_hosts = Path(known) if known else DEFAULT_KNOWN_HOSTS
    key = os.environ.get("LABCTL_SSH_IDENTITY") or ssh.identity_file
    identity = Path(key) if key else None
    return SshTarget(
        name=name,
        host=address,
        port=ssh.port,
        user=os.environ.get("LABCTL_SSH_USER") or ssh.user,
        known_hosts=known_hosts if known_hosts.is_absolute() else base_dir / known_hosts,
        identity_file=(identity if identity.is_absolute() else base_dir / identity)
        if identity
        else None,
    )


class InventoryConnector(SshConnector):
    def __init__(self, inventory: Inventory, base_dir: Path) -> None:
        super().__init__(lambda name: ssh_target(inventory, base_dir, name))
