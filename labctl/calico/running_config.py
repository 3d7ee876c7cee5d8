"""A switch's running configuration, fetched over SSH on its management address.

FRR (SONiC and the simulated switches) is asked through ``vtysh`` on the
switch's Linux, with sudo like any node command; EOS and IOS run the login's
own CLI, so their command goes as one line without sudo or shell quoting.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from labctl.drivers.ssh import SshSession, SshTarget
from labctl.inventory.model import Inventory
from labctl.targets import switch_target

FRR_RUNNING = ("vtysh", "-c", "show running-config")
CLI_RUNNING = ("show running-config",)


class CliSession(SshSession):
    """EOS and IOS: the command line is the switch's CLI, not a shell."""

    def _wrap(self, argv: Sequence[str]) -> str:
        return " ".join(argv)


def fetch(target: SshTarget, platform: str, frr_argv: Sequence[str] = FRR_RUNNING) -> str:
    """``show running-config`` from the switch at ``target``, in its platform's way."""
    if platform == "frr":
        with SshSession(target) as ssh:
            return ssh.run(frr_argv, timeout=20.0).text()
    with CliSession(target) as cli:
        return cli.run(CLI_RUNNING, timeout=20.0).text()


def running_config(inventory: Inventory, base_dir: Path, name: str, platform: str) -> str:
    return fetch(switch_target(inventory, base_dir, name), platform)
