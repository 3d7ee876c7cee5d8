"""Graceful power sent to EOS and IOS switches over SSH, against a CLI peer behind a real sshd.

No EOS or IOS runs here: each switch is a real OpenSSH sshd whose forced command is
tests/peers/cli_switch.py, which records what it got and answers from the
vendor-shaped fixtures in tests/peers/switch_cli/. What is proven: the SSH exchanges
labctl makes (show commands on exec, configuration lines on the shell channel), the
EOS configuration session (staged, then committed; aborted when a line is refused), IOS's
configure mode, the routes and sessions waited on read with labctl's parsers. Not
proven: that a real switch accepts these lines (their text is the reviewed golden
render, tests/unit/test_graceful_power.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from labctl.calico.graceful import DRAIN, Fabric, drain_lines, neighbors, undrain_lines
from labctl.calico.switch_cli import SwitchCli, cli_for
from labctl.drivers.ssh import SshTarget
from labctl.inventory import load_inventory
from labctl.inventory.model import Inventory, Switch
from tests.conftest import REFERENCE
from tests.peers.sshd import running_sshd

REPO = Path(__file__).resolve().parents[2]
SHAPES = REPO / "tests" / "peers" / "switch_cli"
WIND = "31.31.164.222"

EOS_ANSWERS = {
    "show ip bgp summary | json": ["eos-show-ip-bgp-summary.json"] * 2,
    "show ip route bgp | json": [
        "eos-show-ip-route-bgp.json",
        "eos-show-ip-route-bgp-drained.json",
    ],
}
IOS_ANSWERS = {
    "show ip bgp summary": ["ios-show-ip-bgp-summary.txt"] * 2,
    "show ip bgp": ["ios-show-ip-bgp.txt", "ios-show-ip-bgp-drained.txt"],
}


@pytest.fixture(scope="module")
def inv() -> Inventory:
    inventory = load_inventory(REFERENCE).inventory
    assert inventory is not None
    return inventory


class Peer:
    def __init__(self, target: SshTarget, state: Path) -> None:
        self.target, self.state = target, state

    def log(self) -> list[dict[str, object]]:
        path = self.state / "log.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    def shells(self) -> list[list[str]]:
        return [list(e["shell"]) for e in self.log() if "shell" in e]  # type: ignore[call-overload]

    def running(self) -> str:
        path = self.state / "running.txt"
        return path.read_text() if path.exists() else ""


@contextmanager
def cli_peers(
    tmp: Path, platform: str, answers: dict[str, list[str]], refuse: tuple[str, ...] = ()
) -> Iterator[dict[str, Peer]]:
    """One CLI peer (sshd + tests/peers/cli_switch.py) for each of wind's switches."""
    with ExitStack() as stack:
        peers = {}
        for name in ("kek-core", "astrid"):
            sshd = stack.enter_context(running_sshd(tmp / name))
            state = tmp / name / "cli"
            state.mkdir()
            (state / "platform").write_text(platform)
            shaped = {k: [str(SHAPES / f) for f in v] for k, v in answers.items()}
            (state / "answers.json").write_text(json.dumps(shaped))
            (state / "refuse.json").write_text(json.dumps(list(refuse)))
            keys = tmp / name / "authorized_keys"
            forced = f"cd {REPO} && {sys.executable} -m tests.peers.cli_switch {state}"
            keys.write_text(f'command="{forced}" {keys.read_text().strip()}\n')
            target = SshTarget(
                name=name,
                host=sshd.host,
                port=sshd.port,
                known_hosts=sshd.known_hosts,
                identity_file=sshd.client_key,
            )
            peers[name] = Peer(target, state)
        yield peers


def _fabric(inv: Inventory, tmp: Path, platform: str, peers: dict[str, Peer]) -> Fabric:
    def connect(switch: Switch, chosen: str) -> SwitchCli:
        return cli_for(chosen, peers[switch.name].target)

    return Fabric(inv, tmp, switch_platform=platform, connect=connect)


def test_eos_gets_the_drain_in_a_committed_session_and_the_node_called_back(
    inv: Inventory, tmp_path: Path
) -> None:
    wind = inv.server("wind")
    with cli_peers(tmp_path, "eos", EOS_ANSWERS) as peers:
        fabric = _fabric(inv, tmp_path, "eos", peers)
        said = fabric.drain(wind, timeout=10, poll=0.1)
        assert any("routes moved off it on astrid, kek-core" in s for s in said), said
        for n in neighbors(inv, wind):
            peer = peers[n.switch]
            staged, committed = peer.shells()
            session = staged[0]
            assert session.startswith("configure session labctl-drain-wind-")
            assert staged == [session, *drain_lines("eos", n), "end"]
            assert committed == [session, "commit"]
            assert f"neighbor {WIND} route-map {DRAIN} in" in peer.running()
            execs = [e["exec"] for e in peer.log() if "exec" in e]
            assert execs[0] == "show ip bgp summary | json"  # is wind a neighbor there?
            assert execs[-1] == "show ip route bgp | json"  # the routes left wind
        assert [n.switch for n in fabric.drained(wind)] == ["kek-core", "astrid"]

        said = fabric.call_back(wind, timeout=5, poll=0.1)
        assert len(said) == 1 and "sessions Established on kek-core, astrid" in said[0], said
        for n in neighbors(inv, wind):
            peer = peers[n.switch]
            undrain, undrain_commit, route_map, route_map_commit = peer.shells()[2:]
            assert undrain[1:] == [*undrain_lines("eos", n), "end"]
            assert undrain_commit[1:] == ["commit"]
            assert route_map[1:] == [f"no route-map {DRAIN}", "end"]
            assert route_map_commit[1:] == ["commit"]
            assert DRAIN not in peer.running()  # as labctl renders the switch again


def test_a_line_eos_refuses_aborts_the_session_and_nothing_changes(
    inv: Inventory, tmp_path: Path
) -> None:
    wind = inv.server("wind")
    refused = "set community 65535:0 additive"
    with cli_peers(tmp_path, "eos", EOS_ANSWERS, refuse=(refused,)) as peers:
        said = _fabric(inv, tmp_path, "eos", peers).drain(wind, timeout=2, poll=0.1)
        for switch in ("kek-core", "astrid"):
            line = next(s for s in said if s.startswith(f"{switch}: graceful shutdown"))
            assert "(EOS) refused drain-wind: % Invalid input" in line, said
            assert "aborted, nothing changed" in line
            staged, aborted = peers[switch].shells()
            assert aborted == [staged[0], "abort"]
            assert peers[switch].running() == ""
        assert not any("routes moved" in s for s in said)


def test_ios_gets_the_drain_in_configure_mode_and_a_refusal_says_what_stayed(
    inv: Inventory, tmp_path: Path
) -> None:
    wind = inv.server("wind")
    with cli_peers(tmp_path / "ok", "ios", IOS_ANSWERS) as peers:
        fabric = _fabric(inv, tmp_path, "ios", peers)
        said = fabric.drain(wind, timeout=10, poll=0.1)
        assert any("routes moved off it on astrid, kek-core" in s for s in said), said
        for n in neighbors(inv, wind):
            lines = drain_lines("ios", n)
            assert lines[-2:] == ["end", f"clear ip bgp {WIND} soft in"]
            assert peers[n.switch].shells() == [["configure terminal", *lines]]
        said = fabric.call_back(wind, timeout=5, poll=0.1)
        assert "called back" in said[0], said
        for n in neighbors(inv, wind):
            shells = peers[n.switch].shells()
            assert shells[1] == ["configure terminal", *undrain_lines("ios", n)]
            assert shells[2] == ["configure terminal", f"no route-map {DRAIN}", "end"]
            assert DRAIN not in peers[n.switch].running()

    refused = "set local-preference 0"
    with cli_peers(tmp_path / "refused", "ios", IOS_ANSWERS, refuse=(refused,)) as peers:
        said = _fabric(inv, tmp_path, "ios", peers).drain(wind, timeout=2, poll=0.1)
        line = next(s for s in said if s.startswith("astrid: graceful shutdown"))
        assert "(IOS) refused a line of drain-wind: % Invalid input" in line, said
        assert "the lines before it stay applied" in line
        # IOS has no session: what came before the refused line is on the switch.
        assert f"route-map {DRAIN} permit 10" in peers["astrid"].running()
