"""The BGP renders and readers against the real daemons: FRR 8.4 and BIRD 1.6.8.

fohn's bird.cfg (as calico-node would write it) in one namespace, kek-core's
FRR configuration in another: the session comes up, kek-core installs fohn's
pod block, and labctl's parsers read what FRR's JSON and birdc say. The
rendered FRR configuration is what FRR's own ``show running-config`` prints
(read over a real sshd), so ``labctl switch diff`` is empty until something
changes on the switch.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.calico import status
from labctl.calico.config_diff import diff
from labctl.calico.switch_session import fetch
from labctl.drivers.ssh import SshTarget
from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.render import bird, switches
from tests.conftest import REFERENCE
from tests.peers import bgp
from tests.peers.sshd import SshdPeer, running_sshd

pytestmark = pytest.mark.integration

why = bgp.available()
if why:
    pytest.skip(why, allow_module_level=True)


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return require_inventory(REFERENCE)


@pytest.fixture
def pair(inventory: Inventory, tmp_path: Path) -> Iterator[bgp.BgpPair]:
    kek = next(s for s in inventory.switches if s.name == "kek-core")
    with bgp.bgp_pair(
        tmp_path,
        "kek-core",
        switches.config(inventory, kek),
        bird.config(inventory, inventory.server("fohn")),
        "31.31.164.210/28",
        "31.31.164.220/28",
    ) as peers:
        yield peers


def _until(what: str, predicate: object, timeout: float = 15.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout} s")


def test_session_comes_up_and_the_switch_installs_the_block(pair: bgp.BgpPair) -> None:
    took = _until(
        "fohn's session with kek-core Established",
        lambda: (
            status.frr_peers(pair.vtysh("show bgp summary json")).get("31.31.164.220")
            == "Established"
        ),
    )
    assert took < 10
    _until(
        "kek-core installs fohn's block",
        lambda: "10.188.0.0/26" in status.frr_bgp_routes(pair.vtysh("show ip route bgp json")),
    )
    routes = status.frr_bgp_routes(pair.vtysh("show ip route bgp json"))
    assert routes["10.188.0.0/26"] == ["31.31.164.220"]
    # The service CIDR and the public /28 are announced too, and nothing else.
    assert set(routes) <= {"10.188.0.0/26", "10.189.0.0/16", "31.31.164.208/28"}
    protocols = status.bird_protocols(pair.birdc_show("protocols"))
    assert protocols["Global_31_31_164_210"] == "Established"
    # The mesh peers do not exist here: BIRD says why, and the parser keeps its words.
    assert protocols["Mesh_31_31_164_221"] != "Established"
    assert "Global_31_31_164_211" in protocols


def test_switch_diff_is_empty_against_frrs_running_config_over_ssh(
    inventory: Inventory, pair: bgp.BgpPair, tmp_path: Path
) -> None:
    kek = next(s for s in inventory.switches if s.name == "kek-core")
    rendered = switches.config(inventory, kek)
    argv = ["nsenter", "--uts", f"--target={pair.zebra_pid}", *pair.vtysh_argv(), "-c",
            "show running-config"]  # fmt: skip
    with running_sshd(tmp_path / "sshd") as sshd:
        running = fetch(_target(sshd), "frr", argv)
        assert "router bgp 64513" in running  # FRR's own words, not ours
        same = diff(rendered, running, "frr", "kek-core")
        assert same == [], "\n".join(same)
        pair.vtysh(
            "configure terminal",
            "router bgp 64513",
            "no neighbor 31.31.164.222 peer-group CALICO",
            "neighbor CALICO timers 10 30",
        )
        changed = diff(rendered, fetch(_target(sshd), "frr", argv), "frr", "kek-core")
    assert "- neighbor 31.31.164.222 peer-group CALICO" in changed
    assert "- neighbor CALICO timers 3 9" in changed
    assert "+ neighbor CALICO timers 10 30" in changed


def _target(sshd: SshdPeer) -> SshTarget:
    return SshTarget(
        name="kek-core",
        host=sshd.host,
        port=sshd.port,
        known_hosts=sshd.known_hosts,
        identity_file=sshd.client_key,
        user="root",
    )
