"""The one place labctl decides which lab it runs against: the platform, from the environment.

``labctl sim env`` exports one ``LABCTL_*`` variable per way the simulated lab differs
from a real one; when any is set the lab is the simulated one and its platform
(``labctl/sim/platform.py``) says what stands in for what, else the lab is real and
the inventory alone decides (``labctl/platform.py``). Everything below the CLI asks the
platform it is handed. Loading the inventory for a command goes through here too: Ceph's
settings as the platform runs them, and the ``LABCTL_SSH_*`` overrides (which point any
command, on any lab, at another user, known-hosts file or key) folded into ``lab.ssh``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.inventory import require_for_lab as _require_for_lab
from labctl.inventory import require_inventory as _require_inventory
from labctl.inventory.model import Inventory
from labctl.inventory.problems import Problem
from labctl.platform import RealPlatform, as_run

if TYPE_CHECKING:  # validate chooses a platform too, and needs no engine
    from labctl.engine.layer import Platform

SSH_USER = "LABCTL_SSH_USER"
SSH_KNOWN_HOSTS = "LABCTL_SSH_KNOWN_HOSTS"
SSH_IDENTITY = "LABCTL_SSH_IDENTITY"


def chosen(environ: Mapping[str, str] | None = None) -> Platform:
    """The simulated lab's platform when ``environ`` (the process's) names a stand-in,
    else the real one. A bad value is a sentence naming the variable."""
    from labctl.sim import platform as sim

    env = os.environ if environ is None else environ
    return sim.from_environ(env) if sim.simulated(env) else RealPlatform()


def with_ssh_overrides(inventory: Inventory, environ: Mapping[str, str] | None = None) -> Inventory:
    """``inventory`` with ``lab.ssh``'s known-hosts file and key replaced by the
    ``LABCTL_SSH_*`` variables that are set, and the user labctl logs in as; the user
    nodes are installed with (``lab.ssh.user``, in Ignition) stays the inventory's."""
    env = os.environ if environ is None else environ
    ssh = inventory.lab.ssh
    changed = dataclasses.replace(
        ssh,
        login_user=env.get(SSH_USER) or ssh.login_user,
        known_hosts=env.get(SSH_KNOWN_HOSTS) or ssh.known_hosts,
        identity_file=env.get(SSH_IDENTITY) or ssh.identity_file,
    )
    if changed == ssh:
        return inventory
    return dataclasses.replace(inventory, lab=dataclasses.replace(inventory.lab, ssh=changed))


def as_this_lab_runs(inventory: Inventory, platform: Platform | None = None) -> Inventory:
    """``inventory`` as the chosen platform runs it, with the SSH overrides."""
    return with_ssh_overrides(as_run(inventory, platform or chosen()))


def require_inventory(path: Path) -> Inventory:
    """``labctl.inventory.require_inventory``, as this lab runs it."""
    return as_this_lab_runs(_require_inventory(path))


def require_for_lab(
    path: Path, platform: Platform, lab_checks: Collection[str]
) -> tuple[Inventory, list[Problem]]:
    """``labctl.inventory.require_for_lab`` for ``platform``'s lab, as it runs it: the
    lab checks treat it as simulated where BIRD stands in for calico-node."""
    model, notes = _require_for_lab(path, platform.bgp_stand_in() is not None, lab_checks)
    return as_this_lab_runs(model, platform), notes
