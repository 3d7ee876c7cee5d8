"""The Ceph driver: the cluster's own ``ceph`` CLI, run on a monitor's node over SSH.

Ceph's wire protocol (msgr2 with cephx) has no client in Python's standard
library, and the lab's monitors already hold ``ceph.conf`` and the admin
keyring the ceph layer pushed. So labctl asks a monitor's node to run
``ceph ... -f json`` (the host's binary, or the Ceph image under docker or
podman, as ``cluster.ceph.runtime`` says) and decodes the answer. Monitors are
tried in inventory order; one that does not answer (powered off, its node
unreachable) is passed over, and when none answers every one is named with why.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from labctl.drivers.ssh import SshSession
from labctl.errors import DriverError, LabctlError


class Connector(Protocol):
    """One reusable SSH session per node (``labctl/targets.py`` has the inventory's)."""

    def ssh(self, host: str) -> SshSession: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class CephMon:
    """A monitor's node and the argv that starts ``ceph`` there."""

    name: str
    ceph: tuple[str, ...]


class CephCli:
    def __init__(
        self, connector: Connector, mons: Sequence[CephMon], timeout: float = 10.0
    ) -> None:
        self.connector = connector
        self.mons = list(mons)
        self.timeout = timeout

    def json(self, *args: str) -> Any:
        """``ceph ARGS -f json`` from the first monitor node that answers, decoded."""
        return self._ask(args, decode=True)

    def command(self, *args: str) -> str:
        """``ceph ARGS`` from the first monitor node that answers it with exit 0: for the
        commands that change the cluster and print a sentence, not JSON, even with ``-f
        json`` (``osd out``, ``osd purge``, ``mon remove``...), or answer by exit code
        alone (``osd safe-to-destroy``). Returns what it printed."""
        said: str = self._ask(args, decode=False)
        return said

    def _ask(self, args: Sequence[str], decode: bool) -> Any:
        errors = []
        for mon in self.mons:
            argv = [*mon.ceph, "--connect-timeout", f"{self.timeout:g}", *args]
            if decode:
                argv += ["-f", "json"]
            try:
                ssh = self.connector.ssh(mon.name)
                done = ssh.run(argv, check=False, timeout=self.timeout + 5)
            except DriverError as exc:
                errors.append(f"{mon.name}: {exc}")
                continue
            if not done.ok:
                why = done.stderr.decode(errors="replace").strip().splitlines()
                errors.append(
                    f"{mon.name}: `ceph {shlex.join(args)}` exited {done.exit_code}"
                    + (f" ({why[-1]})" if why else "")
                )
                continue
            if not decode:
                return (done.stdout or b"").decode(errors="replace")
            try:
                return json.loads(done.stdout or b"null")
            except ValueError:
                errors.append(f"{mon.name}: `ceph {shlex.join(args)}` did not answer JSON")
        raise LabctlError("no Ceph monitor answered: " + "; ".join(errors))

    def close(self) -> None:
        self.connector.close()
