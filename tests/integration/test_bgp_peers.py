"""The BGP renders and readers against the real daemons: FRR 8.4 and BIRD 1.6.8.

fohn's bird.cfg (as calico-node would write it) in one namespace, kek-core's
FRR configuration in another: the session comes up, kek-core installs fohn's
pod block, and labctl's parsers read what FRR's JSON and birdc say. The
rendered FRR configuration is what FRR's own ``show running-config`` prints
(read over a real sshd), so ``labctl switch diff`` is empty until something
changes on the switch.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.calico import status
from labctl.calico.config_diff import diff
from labctl.calico.running_config import fetch
from labctl.drivers.ssh import SshTarget
from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory, SecretRef
from labctl.render import switches
from labctl.render.bgp_common import resolving
from labctl.sim.render import bird
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
    # The service CIDR and the ingress range are announced too, and nothing else.
    assert set(routes) <= {"10.188.0.0/26", "10.189.0.0/16", "31.31.164.212/30"}
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


def _with_password(inventory: Inventory) -> Inventory:
    """The reference inventory with a BGP password on the nodes' sessions to kek-core."""
    calico = inventory.cluster.calico
    assert calico is not None
    peers = tuple(
        dataclasses.replace(p, password=SecretRef(env="LABCTL_TEST_BGP_PASSWORD"))
        if p.switch == "kek-core"
        else p
        for p in calico.peers
    )
    cluster = dataclasses.replace(
        inventory.cluster, calico=dataclasses.replace(calico, peers=peers)
    )
    return dataclasses.replace(inventory, cluster=cluster)


@pytest.mark.parametrize("switch_says", ["same-password-both-sides", "another-password"])
def test_a_bgp_password_makes_the_session_only_when_both_sides_agree(
    inventory: Inventory, tmp_path: Path, switch_says: str
) -> None:
    """TCP MD5 (RFC 2385) between BIRD's and FRR's renders of the same secret, by the
    kernel of each namespace: with one password the session comes up, with two it never
    gets past the TCP handshake."""
    guarded = _with_password(inventory)
    kek = next(s for s in guarded.switches if s.name == "kek-core")
    switch_cfg = switches.config(guarded, kek, secret=resolving(lambda ref: switch_says))
    node_cfg = bird.config(
        guarded, guarded.server("fohn"), secret=resolving(lambda ref: "same-password-both-sides")
    )
    assert 'password "same-password-both-sides";' in node_cfg
    assert f"neighbor CALICO password {switch_says}" in switch_cfg
    with bgp.bgp_pair(tmp_path, "kek-core", switch_cfg, node_cfg,
                      "31.31.164.210/28", "31.31.164.220/28") as pair:  # fmt: skip

        def established() -> bool:
            peers = status.frr_peers(pair.vtysh("show bgp summary json"))
            return peers.get("31.31.164.220") == "Established"

        if switch_says == "same-password-both-sides":
            assert _until("the session with a password Established", established) < 10
            # Every segment's signature checked out: the counter below says nothing else.
            assert pair.md5_failures() == (0, 0)
        else:
            # The agreeing pair is Established on its first connection (under 10 s).
            # Here each side's kernel drops the other's SYNs for their MD5 signature, in
            # both directions, attempt after attempt (retried about every second), and
            # the session is never Established meanwhile: the handshake is what fails.
            def refused_both_ways() -> bool:
                assert not established(), "Established with two different passwords"
                return min(pair.md5_failures()) >= 3

            _until("both kernels refuse the other side's signature", refused_both_ways)
            assert not established()
            assert (
                status.bird_protocols(pair.birdc_show("protocols"))["Global_31_31_164_210"]
                != "Established"
            )


def test_switch_diff_compares_the_password_by_value_and_never_prints_it(
    inventory: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FRR's running configuration shows a neighbor's password in clear: `switch diff`
    compares it with the inventory's value (a wrong key is drift) and prints neither."""
    from labctl.cli.switch_cmd import with_secrets

    value, other = "kek-md5-Zq7v", "not-the-inventorys-key"
    monkeypatch.setenv("LABCTL_TEST_BGP_PASSWORD", value)
    guarded = _with_password(inventory)
    kek = next(s for s in guarded.switches if s.name == "kek-core")
    rendered, hidden = with_secrets(guarded, kek, None, REFERENCE.parent)
    assert f" neighbor CALICO password {value}\n" in rendered
    node_cfg = bird.config(guarded, guarded.server("fohn"), secret=resolving(lambda ref: value))
    with bgp.bgp_pair(tmp_path, "kek-core", rendered, node_cfg,
                      "31.31.164.210/28", "31.31.164.220/28") as pair:  # fmt: skip
        argv = ["nsenter", "--uts", f"--target={pair.zebra_pid}", *pair.vtysh_argv(), "-c",
                "show running-config"]  # fmt: skip
        with running_sshd(tmp_path / "sshd") as sshd:
            running = fetch(_target(sshd), "frr", argv)
            assert f"neighbor CALICO password {value}" in running  # FRR's own words
            assert diff(rendered, running, "frr", "kek-core", hidden) == []
            pair.vtysh(
                "configure terminal", "router bgp 64513", f"neighbor CALICO password {other}"
            )
            changed = diff(rendered, fetch(_target(sshd), "frr", argv), "frr", "kek-core", hidden)
    where = "<secret from environment variable LABCTL_TEST_BGP_PASSWORD>"
    assert f"- neighbor CALICO password {where}" in changed
    assert "+ neighbor CALICO password <secret not shown>" in changed
    printed = "\n".join(changed)
    assert value not in printed and other not in printed
