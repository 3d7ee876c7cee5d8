"""The BGP read asks an FRR switch once, and reads the pod blocks beside the devices (issue 28).

The calico layer's proof (``calico.established``, ``BgpSession.status``) read each FRR
switch with two ``vtysh`` runs, its sessions then its routes, two exchanges in a row;
and the nodes' pod blocks (the Kubernetes API) only after every device had answered.
Against a real FRR (``tests/peers/bgp.py``: kek-core's rendered configuration, fohn's
BIRD peering with it) reached over a real sshd on loopback, whose forced command logs
each command and hands ``vtysh`` to that FRR: one exchange per switch now gives what the
two gave, and the pod blocks are read while the switches are (the switch answers only
once the blocks' read has begun; on main the devices had to answer first).
"""

from __future__ import annotations

import dataclasses
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.calico import status
from labctl.calico.fabric import FRR_ROUTES, FRR_SUMMARY, BgpSession
from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.render import switches
from labctl.sim.render import bird
from tests.conftest import REFERENCE
from tests.peers import bgp
from tests.peers.sshd import SshdPeer, connector, running_sshd

pytestmark = pytest.mark.integration

why = bgp.available()
if why:
    pytest.skip(why, allow_module_level=True)

FOHN = "31.31.164.220"
BLOCK = "10.188.0.0/26"


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return require_inventory(REFERENCE)


@pytest.fixture(scope="module")
def pair(inventory: Inventory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[bgp.BgpPair]:
    kek = next(s for s in inventory.switches if s.name == "kek-core")
    with bgp.bgp_pair(
        tmp_path_factory.mktemp("bgp"),
        "kek-core",
        switches.config(inventory, kek),
        bird.config(inventory, inventory.server("fohn")),
        "31.31.164.210/28",
        "31.31.164.220/28",
        prefix="c28",
    ) as peers:
        deadline = time.monotonic() + 20
        while BLOCK not in status.frr_bgp_routes(peers.vtysh("show ip route bgp json")):
            assert time.monotonic() < deadline, "kek-core did not install fohn's block"
            time.sleep(0.2)
        yield peers


class Switch:
    """An sshd whose every login runs the command it was given against ``pair``'s FRR,
    logged; ``vtysh`` answers only once the file ``gate`` exists (up to 3 s, else exit 1)."""

    def __init__(self, sshd: SshdPeer, workdir: Path, pair: bgp.BgpPair) -> None:
        self.sshd, self.log, self.gate = sshd, workdir / "commands.log", workdir / "gate"
        vtysh = shlex.join(["nsenter", "--uts", f"--target={pair.zebra_pid}", *pair.vtysh_argv()])
        script = workdir / "switch.sh"
        script.write_text(
            "#!/bin/sh\n"
            f'printf "%s\\n" "$SSH_ORIGINAL_COMMAND" >> {self.log}\n'
            'eval "set -- $SSH_ORIGINAL_COMMAND"\n'
            '[ "$1" = vtysh ] || exit 127\n'
            "shift\n"
            "i=0\n"
            f"while [ ! -e {self.gate} ]; do\n"
            "  i=$((i + 1)); [ $i -gt 30 ] && exit 1; sleep 0.1\n"
            "done\n"
            f'exec {vtysh} "$@"\n'
        )
        script.chmod(0o755)
        keys = workdir / "sshd" / "authorized_keys"
        keys.write_text(f'command="{script}" {keys.read_text().strip()}\n')

    def commands(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def switch(tmp_path: Path, pair: bgp.BgpPair) -> Iterator[Switch]:
    with running_sshd(tmp_path / "sw" / "sshd") as sshd:
        yield Switch(sshd, tmp_path / "sw", pair)


def _session(inventory: Inventory, tmp_path: Path, switch: Switch, blocks: object) -> BgpSession:
    session = BgpSession(inventory, tmp_path, None, "frr", blocks)  # type: ignore[arg-type]
    session._connector.close()
    session._connector = connector(switch.sshd)  # type: ignore[assignment]
    return session


def test_an_frr_switch_is_read_in_one_exchange(
    inventory: Inventory, tmp_path: Path, pair: bgp.BgpPair, switch: Switch
) -> None:
    switch.gate.touch()
    kek = next(s for s in inventory.switches if s.name == "kek-core")
    with _session(inventory, tmp_path, switch, None) as session:
        peers, routes = session._switch(kek, None)
    # What the two reads, each alone, say.
    assert peers == status.frr_peers(pair.vtysh(FRR_SUMMARY[2]))
    assert routes == status.frr_bgp_routes(pair.vtysh(FRR_ROUTES[2]))
    assert peers[FOHN] == "Established" and routes[BLOCK] == [FOHN]
    assert len(switch.commands()) == 1, switch.commands()  # on main: 2


def test_the_pod_blocks_are_read_beside_the_switches(
    inventory: Inventory, tmp_path: Path, switch: Switch
) -> None:
    def blocks() -> dict[str, list[str]] | None:
        switch.gate.touch()  # the switches answer once this read has begun
        return None  # topology's blocks, the stand-in's

    # Both switches read over SSH (astrid's inventory reads it over SNMP).
    frr_only = dataclasses.replace(
        inventory,
        switches=type(inventory.switches)(
            dataclasses.replace(s, bgp_status=None) for s in inventory.switches
        ),
    )
    with _session(frr_only, tmp_path, switch, blocks) as session:
        found = session.status()
    # Every peering switch answered (on main they were read first, and gave up).
    assert found.unreachable == {}, found.unreachable
    assert len(switch.commands()) == 2, switch.commands()  # kek-core and astrid, once each
