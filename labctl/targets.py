"""How labctl reaches each server over SSH, as the inventory says.

A connector hands out one reusable SSH session per host; the SSH applier asks
it for sessions and closes it at the end of the run. Tests hand the applier a
connector of their own (every node on one loopback sshd). It lives outside the
engine so that domain packages (the etcd, Ceph and Calico sessions, the os
layer's work) may reach a host without importing the engine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from labctl.drivers.ssh import SshSession, SshTarget, current_pool
from labctl.errors import LabctlError
from labctl.inventory.export import primary_address
from labctl.inventory.model import Inventory

DEFAULT_KNOWN_HOSTS = Path(".labctl/known_hosts")


class SshConnector:
    """One SshSession per host, created on first use, from a host -> target resolver.

    Within ``drivers.ssh.shared_sessions()`` the sessions are the process's pool's,
    which ``close`` leaves open for the other users of the run (the pool closes them).
    """

    def __init__(self, resolve: Callable[[str], SshTarget]) -> None:
        self._resolve = resolve
        self._sessions: dict[str, SshSession] = {}
        self._lock = threading.Lock()

    def ssh(self, host: str) -> SshSession:
        pool = current_pool()
        if pool is not None:
            return pool.session(self._resolve(host))
        with self._lock:
            session = self._sessions.get(host)
            if session is None:
                session = SshSession(self._resolve(host))
                self._sessions[host] = session
        session.connect()
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.close()
            self._sessions.clear()


def ssh_target(inventory: Inventory, base_dir: Path, name: str) -> SshTarget:
    try:
        server = inventory.server(name)
    except KeyError:
        switch = next((s for s in inventory.switches if s.name == name), None)
        if switch is None:
            raise LabctlError(f"no server or switch named {name} in the inventory") from None
        return switch_target(inventory, base_dir, name)
    address = primary_address(server, inventory)
    if address is None:
        raise LabctlError(f"{name} has no public or node address to reach it on")
    return _target(inventory, base_dir, name, address, inventory.lab.ssh.port, None)


def switch_target(inventory: Inventory, base_dir: Path, name: str) -> SshTarget:
    """A switch is reached on its management address (the calico layer pushes FRR's
    configuration there; ``labctl switch diff`` reads the running one)."""
    switch = next(s for s in inventory.switches if s.name == name)
    if switch.management is None:
        raise LabctlError(f"switch {name} has no management address to reach it on")
    return _target(
        inventory, base_dir, name, switch.management.address, switch.ssh_port, switch.ssh_user
    )


def _target(
    inventory: Inventory, base_dir: Path, name: str, address: str, port: int, user: str | None
) -> SshTarget:
    # lab.ssh as the CLI hands it over: the `LABCTL_SSH_*` variables (e.g. `labctl sim
    # env`'s) are folded into it there (labctl/cli/platform_choice.py), not read here.
    ssh = inventory.lab.ssh
    known_hosts = Path(ssh.known_hosts) if ssh.known_hosts else DEFAULT_KNOWN_HOSTS
    identity = Path(ssh.identity_file) if ssh.identity_file else None
    return SshTarget(
        name=name,
        host=address,
        port=port,
        user=user or ssh.login_user or ssh.user,
        known_hosts=known_hosts if known_hosts.is_absolute() else base_dir / known_hosts,
        identity_file=(identity if identity.is_absolute() else base_dir / identity)
        if identity
        else None,
    )


class InventoryConnector(SshConnector):
    def __init__(self, inventory: Inventory, base_dir: Path) -> None:
        super().__init__(lambda name: ssh_target(inventory, base_dir, name))
