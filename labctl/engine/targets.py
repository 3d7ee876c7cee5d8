"""How labctl reaches each server over SSH, as the inventory says."""

from __future__ import annotations

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
    known_hosts = Path(ssh.known_hosts) if ssh.known_hosts else DEFAULT_KNOWN_HOSTS
    identity = Path(ssh.identity_file) if ssh.identity_file else None
    return SshTarget(
        name=name,
        host=address,
        port=ssh.port,
        user=ssh.user,
        known_hosts=known_hosts if known_hosts.is_absolute() else base_dir / known_hosts,
        identity_file=(identity if identity.is_absolute() else base_dir / identity)
        if identity
        else None,
    )


class InventoryConnector(SshConnector):
    def __init__(self, inventory: Inventory, base_dir: Path) -> None:
        super().__init__(lambda name: ssh_target(inventory, base_dir, name))
