"""Graceful power for the BGP fabric: the switches stop preferring a node before it goes dark.

When a node dies, each switch keeps sending it traffic until the BGP hold time runs
out (calico#4607, #7144): every pod block the switch reaches over several nodes
(the node-to-node mesh re-announces each block through every node) loses the share
that went through the dead one. So before labctl powers a server off, cycles,
resets or soft-stops it, it asks every switch holding a session with it to stop
preferring what it learns there (RFC 8326's graceful shutdown: the GRACEFUL_SHUTDOWN
community 65535:0 and local preference 0 on the routes from that neighbor), waits
until the switches' installed routes have moved off the node (bounded), and only
then cuts the power. After power-on it waits until those sessions are Established
again and then calls the node back (the preference removed).

The lines are rendered per switch platform (pure: ``drain_lines``, ``undrain_lines``);
the route map keeps the import filter of the calico layer's configuration (the same
prefix list), so a drained neighbor is never let announce more. Every platform is sent
its lines over SSH in its own CLI (``switch_cli``): FRR (SONiC's, and the simulated
lab's switches) through ``vtysh``, EOS in a configuration session committed only when
no line was refused, IOS in configure mode; the routes and sessions waited on are read
there too (``vendor_bgp`` parses EOS's JSON and IOS's text).
A switch on which the node is not a BGP neighbor (a lab whose calico layer has not
run) is left alone: nothing there prefers the node, and nothing is configured.

Whether a node is still drained (a call-back that timed out leaves it so) is read from
each switch's running configuration, and a ``Fabric`` reads it once per switch for all
the servers it is asked about (a converged bootstrap asks for every server it finds on):
the read is kept until this ``Fabric`` configures that switch, and read again after.
Only labctl drains, and a run's own changes go through its one ``Fabric``; a drain
another labctl process sets on a switch while this one runs is that process's to call back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from labctl.calico.switch_cli import SwitchCli, cli_for
from labctl.errors import LabctlError
from labctl.inventory import topology
from labctl.inventory.model import Inventory, Server, Switch
from labctl.render.switch_frr import IMPORT
from labctl.targets import switch_target

DRAIN = "LABCTL-DRAIN"
GSHUT = "65535:0"  # RFC 8326 GRACEFUL_SHUTDOWN
ESTABLISHED = "Established"
APPLIED = ("frr", "eos", "ios")  # platforms labctl configures itself


@dataclass(frozen=True)
class Neighbor:
    """One switch session of a node: the switch, its ASN, the node's address on it."""

    switch: str
    asn: int
    address: str


def neighbors(inventory: Inventory, server: Server) -> list[Neighbor]:
    """The switch sessions ``server`` holds, in inventory order."""
    switches = {s.name: s for s in inventory.switches}
    out = []
    for s in topology.sessions(inventory, server.name, mesh=False):
        switch = switches.get(s.peer)
        if s.kind == "switch" and switch is not None and switch.asn is not None:
            out.append(Neighbor(switch.name, switch.asn, s.local_address))
    return out


def _route_map(platform: str) -> list[str]:
    pad = "   " if platform == "eos" else " "
    return [
        f"route-map {DRAIN} permit 10",
        f"{pad}match ip address prefix-list {IMPORT}",
        f"{pad}set local-preference 0",
        f"{pad}set community {GSHUT} additive",
    ]


def drain_lines(platform: str, neighbor: Neighbor) -> list[str]:
    """Configuration lines (in configure mode) that make the switch stop preferring routes
    learned from ``neighbor``: a route map on its inbound side, the import filter kept."""
    if platform not in ("frr", "eos", "ios"):
        raise LabctlError(f"no graceful shutdown rendered for switch platform {platform!r}")
    family = ["address-family ipv4 unicast"] if platform in ("frr", "ios") else []
    lines = [
        *_route_map(platform),
        "exit",
        f"router bgp {neighbor.asn}",
        *family,
        f"neighbor {neighbor.address} route-map {DRAIN} in",
    ]
    if platform == "ios":
        # IOS applies a changed inbound policy only after a soft refresh.
        lines += ["end", f"clear ip bgp {neighbor.address} soft in"]
    return lines


def undrain_lines(platform: str, neighbor: Neighbor) -> list[str]:
    """The node called back: its inbound route map removed (the peer group's applies)."""
    family = ["address-family ipv4 unicast"] if platform in ("frr", "ios") else []
    lines = [
        f"router bgp {neighbor.asn}",
        *family,
        f"no neighbor {neighbor.address} route-map {DRAIN} in",
    ]
    if platform == "ios":
        lines += ["end", f"clear ip bgp {neighbor.address} soft in"]
    return lines


def still_via(routes: Mapping[str, Sequence[str]], address: str) -> list[str]:
    """Prefixes whose installed next hops still include ``address`` beside another one.

    A prefix reached only through the node has nowhere to move (its only path is
    kept, at a low preference); every other prefix must have left the node.
    """
    return sorted(p for p, hops in routes.items() if address in hops and set(hops) != {address})


class Fabric:
    """The switches' side of graceful power, over SSH in each switch's own CLI
    (``switch_cli``: FRR's ``vtysh``, an EOS configuration session, IOS's configure mode)."""

    def __init__(
        self,
        inventory: Inventory,
        base_dir: Path,
        switch_platform: str | None = None,
        say: Callable[[str], None] = lambda _text: None,
        connect: Callable[[Switch, str], SwitchCli] | None = None,
    ) -> None:
        self.inventory = inventory
        self.base_dir = base_dir
        self.switch_platform = switch_platform
        self.say = say
        self._switches = {s.name: s for s in inventory.switches}
        # How a switch's CLI is reached (tests hand in their own peer's address).
        self._connect = connect or self._ssh
        # Each switch's running configuration as last read, until this Fabric configures
        # that switch (``drained``); a lock per switch, so servers asked about at once
        # wait for one read instead of each making its own.
        self._running: dict[str, str] = {}
        self._running_locks = {name: threading.Lock() for name in self._switches}

    def platform(self, switch: Switch) -> str:
        return self.switch_platform or switch.platform or "frr"

    def _ssh(self, switch: Switch, platform: str) -> SwitchCli:
        target = replace(
            switch_target(self.inventory, self.base_dir, switch.name), connect_timeout=5.0
        )
        return cli_for(platform, target)

    def cli(self, name: str) -> SwitchCli:
        switch = self._switches[name]
        return self._connect(switch, self.platform(switch))

    def _configure(self, switch: str, lines: Sequence[str], label: str) -> None:
        try:
            self.cli(switch).apply(lines, label)
        finally:
            self._forget(switch)  # even a refused line may have changed it (IOS)

    def _forget(self, switch: str) -> None:
        """The switch was configured: its running configuration is read again when asked."""
        with self._running_locks[switch]:
            self._running.pop(switch, None)

    def _running_config(self, switch: str) -> str:
        """The switch's running configuration, read once until this Fabric configures it."""
        with self._running_locks[switch]:
            if switch not in self._running:
                self._running[switch] = self.cli(switch).running()
            return self._running[switch]

    def _live(self, server: Server) -> tuple[list[Neighbor], list[str]]:
        """The node's sessions labctl can act on, and sentences for those it cannot."""
        usable, notes = [], []
        for n in neighbors(self.inventory, server):
            platform = self.platform(self._switches[n.switch])
            if platform not in APPLIED:
                notes.append(f"{n.switch}: no graceful shutdown for switch platform {platform}")
                continue
            try:
                peers = self.cli(n.switch).sessions()
            except (LabctlError, OSError, ValueError) as exc:
                notes.append(f"{n.switch}: not reached, {server.name} not drained there: {exc}")
                continue
            if n.address not in peers:
                continue  # no session there (the calico layer has not run): nothing to drain
            usable.append(n)
        return usable, notes

    def drain(self, server: Server, timeout: float, poll: float = 0.5) -> list[str]:
        """Drain ``server`` on every switch and wait until routes left it; what was done."""
        start = time.monotonic()
        found, said = self._live(server)
        usable = []
        for n in found:
            platform = self.platform(self._switches[n.switch])
            try:
                self._configure(n.switch, drain_lines(platform, n), f"drain-{server.name}")
                usable.append(n)
            except (LabctlError, OSError) as exc:
                said.append(f"{n.switch}: graceful shutdown of {server.name} not set: {exc}")
        if not usable:
            return said
        names = ", ".join(sorted({n.switch for n in usable}))
        deadline = time.monotonic() + timeout
        while True:
            left = {n.switch: self._still_via(n) for n in usable}
            if not any(left.values()):
                said.append(
                    f"{server.name}: routes moved off it on {names} in "
                    f"{time.monotonic() - start:.1f} s (graceful shutdown)"
                )
                return said
            if time.monotonic() >= deadline:
                stuck = "; ".join(f"{s}: {', '.join(p)}" for s, p in left.items() if p)
                said.append(
                    f"{server.name}: routes still through it after {timeout:g} s ({stuck}); "
                    "going on"
                )
                return said
            time.sleep(poll)

    def _still_via(self, n: Neighbor) -> list[str]:
        try:
            return still_via(self.cli(n.switch).routes(), n.address)
        except (LabctlError, OSError, ValueError) as exc:
            return [f"routes not read ({exc})"]

    def drained(self, server: Server) -> list[Neighbor]:
        """The node's sessions that carry labctl's drain now (read from the running config:
        each switch's read once for every server, until this Fabric configures it)."""
        candidates = [
            n
            for n in neighbors(self.inventory, server)
            if self.platform(self._switches[n.switch]) in APPLIED
        ]

        def carries(n: Neighbor) -> bool:
            try:
                running = self._running_config(n.switch)
            except (LabctlError, OSError):
                return False
            return f"neighbor {n.address} route-map {DRAIN} in" in running

        if len(candidates) <= 1:
            return [n for n in candidates if carries(n)]
        with ThreadPoolExecutor(max_workers=min(4, len(candidates))) as pool:
            found = list(pool.map(carries, candidates))
        return [n for n, drained in zip(candidates, found, strict=True) if drained]

    def call_back(
        self, server: Server, timeout: float, since: float | None = None, poll: float = 0.5
    ) -> list[str]:
        """After power-on: wait until the drained sessions are Established, then undrain.

        ``since`` (a ``time.monotonic()``): the power went down then, so a session up for
        longer is the old one, which the switch has not yet seen die (its hold time):
        it does not count.
        """
        pending = self.drained(server)
        if not pending:
            return []
        start = time.monotonic()
        deadline = start + timeout
        said = []
        while True:
            with ThreadPoolExecutor(max_workers=4) as pool:
                states = dict(
                    zip(
                        [n.switch for n in pending],
                        pool.map(lambda n: self._state(n, since), pending),
                        strict=True,
                    )
                )
            if all(s == ESTABLISHED for s in states.values()):
                said.append(
                    f"{server.name}: sessions Established on "
                    f"{', '.join(states)} after {time.monotonic() - start:.1f} s; called back"
                )
                break
            if time.monotonic() >= deadline:
                down = ", ".join(f"{k} {v}" for k, v in states.items() if v != ESTABLISHED)
                said.append(
                    f"{server.name}: sessions not Established after {timeout:g} s ({down}); "
                    "left drained: `labctl power on` calls it back once they are"
                )
                return said
            time.sleep(poll)
        for n in pending:
            platform = self.platform(self._switches[n.switch])
            try:
                self._configure(n.switch, undrain_lines(platform, n), f"undrain-{server.name}")
                # The route map goes too once no neighbor uses it (FRR reads a missing
                # route map as deny-all, so never while another node is drained), so the
                # switch runs what labctl renders again (`labctl switch diff`).
                if f"route-map {DRAIN} in" not in self._running_config(n.switch):
                    self._configure(
                        n.switch, [f"no route-map {DRAIN}"], f"undrain-{server.name}-route-map"
                    )
            except (LabctlError, OSError) as exc:
                said.append(
                    f"{n.switch}: {server.name} not called back ({exc}); "
                    "`labctl power on` tries again"
                )
        return said

    def _state(self, n: Neighbor, since: float | None) -> str:
        try:
            session = self.cli(n.switch).sessions().get(n.address)
        except (LabctlError, OSError, ValueError) as exc:
            return f"not read ({exc})"
        if session is None:
            return "no session"
        up_for = session.up_for or 0.0
        if session.state == ESTABLISHED and since is not None and up_for > time.monotonic() - since:
            return "the old session (not yet timed out)"
        return session.state
