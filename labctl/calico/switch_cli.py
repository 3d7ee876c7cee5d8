"""A BGP switch's command line over SSH, one class per platform: FRR, EOS and IOS.

Graceful power (``graceful.py``) asks a switch four things: its BGP sessions, its
installed BGP routes, its running configuration, and to apply a few configuration
lines. All three platforms are reached the way labctl already reaches them for
``labctl switch diff``: SSH to the management address with the lab's key, the switch's
host key pinned in known_hosts (``targets.switch_target``). No second credential.

* FRR (SONiC, the simulated switches): ``vtysh -c ...`` in the switch's Linux, JSON out,
  over the run's shared connection to the switch when one is open
  (``drivers.ssh.session``: a bootstrap's power layer asks every switch whether each
  server it finds on is still drained, and would otherwise log in for each question).
* EOS: show commands as one exec line ending in ``| json`` (the model eAPI returns, over
  the same SSH), configuration through a **configuration session**: the lines go into a
  named session with ``end`` (pending, nothing applied), and only when the CLI refused
  none of them does a second exchange ``commit`` it; otherwise it is ``abort``-ed, and the
  switch is as it was. eAPI (HTTPS JSON-RPC) would need a password by reference, a
  certificate to pin and the API enabled on every switch, for what SSH gives here.
* IOS: show commands in text (``show ip bgp``, ``show ip bgp summary``; parsed in
  ``vendor_bgp``); configuration as ``configure terminal`` ... ``end``. Classic IOS has no
  configuration session, so a refused line leaves the lines before it applied: said.

The CLI lines go on the SSH session's shell channel with no terminal (no pager, no echo),
as ``ssh switch < file`` sends them; the login must land in privileged mode (privilege 15),
as ``switch diff``'s ``show running-config`` already needs.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from labctl.calico import status as frr
from labctl.calico.running_config import CliSession
from labctl.calico.vendor_bgp import (
    Session,
    cli_errors,
    eos_routes,
    eos_sessions,
    ios_routes,
    ios_sessions,
)
from labctl.drivers.ssh import SshTarget, session
from labctl.errors import LabctlError

TIMEOUT = 20.0  # seconds for one exchange with a switch


class SwitchCli(Protocol):
    """What graceful power asks of one switch."""

    def sessions(self) -> dict[str, Session]: ...

    def routes(self) -> dict[str, list[str]]: ...

    def running(self) -> str: ...

    def apply(self, lines: Sequence[str], label: str) -> None:
        """Apply configuration ``lines`` (in configure mode); ``label`` names the change."""
        ...


class FrrCli:
    def __init__(self, target: SshTarget) -> None:
        self.target = target

    def _vtysh(self, *args: str) -> str:
        with session(self.target) as ssh:
            return ssh.run(("vtysh", *args), timeout=TIMEOUT).text()

    def sessions(self) -> dict[str, Session]:
        summary = json.loads(self._vtysh("-c", "show bgp summary json") or "{}")
        family = summary.get("ipv4Unicast", summary)
        peers = family.get("peers", {}) if isinstance(family, dict) else {}
        return {
            address: Session(
                str(peer.get("state", "?")), float(peer.get("peerUptimeMsec", 0)) / 1000
            )
            for address, peer in peers.items()
            if isinstance(peer, dict)
        }

    def routes(self) -> dict[str, list[str]]:
        return frr.frr_bgp_routes(self._vtysh("-c", "show ip route bgp json"))

    def running(self) -> str:
        return self._vtysh("-c", "show running-config")

    def apply(self, lines: Sequence[str], label: str) -> None:
        argv = ["-c", "configure terminal"]
        for line in lines:
            argv += ["-c", line]
        self._vtysh(*argv)


class _Cli:
    """EOS and IOS: the login's CLI, one exec line per show command."""

    platform = ""

    def __init__(self, target: SshTarget) -> None:
        self.target = target

    def show(self, command: str) -> str:
        with CliSession(self.target) as cli:
            return cli.run((command,), timeout=TIMEOUT).text()

    def feed(self, lines: Sequence[str], label: str) -> str:
        """``lines`` to the CLI on the shell channel; what it printed."""
        data = "".join(f"{line}\n" for line in lines).encode()
        with CliSession(self.target) as cli:
            return cli.run((), stdin=data, timeout=TIMEOUT, check=False, label=label).text()

    def running(self) -> str:
        return self.show("show running-config")


class EosCli(_Cli):
    platform = "eos"

    def __init__(self, target: SshTarget, clock: Callable[[], float] = time.time) -> None:
        super().__init__(target)
        self.clock = clock

    def sessions(self) -> dict[str, Session]:
        return eos_sessions(self.show("show ip bgp summary | json"), self.clock())

    def routes(self) -> dict[str, list[str]]:
        return eos_routes(self.show("show ip route bgp | json"))

    def apply(self, lines: Sequence[str], label: str) -> None:
        name = "labctl-" + re.sub(r"[^A-Za-z0-9_-]", "-", label)[:40] + f"-{time.time_ns():x}"
        staged = self.feed([f"configure session {name}", *lines, "end"], f"{label} (staged)")
        refused = cli_errors(staged)
        last = "abort" if refused else "commit"
        done = self.feed([f"configure session {name}", last], f"{label} ({last})")
        if refused:
            raise LabctlError(
                f"{self.target.name} (EOS) refused {label}: {refused[0]}; configuration "
                f"session {name} aborted, nothing changed"
            )
        failed = cli_errors(done)
        if failed:
            raise LabctlError(
                f"{self.target.name} (EOS): commit of {label} failed: {failed[0]}; "
                f"see `show configuration sessions` for {name}"
            )


class IosCli(_Cli):
    platform = "ios"

    def sessions(self) -> dict[str, Session]:
        return ios_sessions(self.show("show ip bgp summary"))

    def routes(self) -> dict[str, list[str]]:
        return ios_routes(self.show("show ip bgp"))

    def apply(self, lines: Sequence[str], label: str) -> None:
        body = list(lines) if "end" in lines else [*lines, "end"]
        out = self.feed(["configure terminal", *body], label)
        refused = cli_errors(out)
        if refused:
            raise LabctlError(
                f"{self.target.name} (IOS) refused a line of {label}: {refused[0]}; IOS has "
                "no configuration session, so the lines before it stay applied (compare "
                "`show running-config`)"
            )


def cli_for(platform: str, target: SshTarget) -> SwitchCli:
    """The switch's command line for its ``platform`` (frr, eos, ios)."""
    if platform == "frr":
        return FrrCli(target)
    if platform == "eos":
        return EosCli(target)
    if platform == "ios":
        return IosCli(target)
    raise LabctlError(f"{target.name}: no command line known for switch platform {platform!r}")
