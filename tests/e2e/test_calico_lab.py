"""The calico layer end to end on the simulated reference lab, with real BGP daemons.

``bootstrap --only calico`` pushes FRR's configuration to the two core switches
(namespaces running FRR, reached over SSH on their management addresses) and
runs BIRD 1.6 on every node with the bird.cfg calico-node would write. Then:
every session Established and every pod block learned by both switches within
a bound; ``labctl switch diff`` finds the switches running what labctl renders;
a packet from an address in one node's pod block reaches one in another's.
Stopping one switch's FRR makes ``bgp status`` name the dropped sessions while
the other switch still routes to every block; a node powered off has its block
withdrawn from the switches within the hold time.

The nodes' sessions to kek-core carry a BGP password (TCP MD5) from an
environment variable: it reaches kek-core's FRR and the nodes' BIRD as its
value and is nowhere in what labctl prints or keeps; a different key typed on
the switch keeps those sessions down and bootstrap fails; a new key in the
environment reaches both ends and the sessions come back.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.etcd.membership import RECORD_NAME as MEMBERSHIP
from labctl.etcd.membership import MembershipRecord
from labctl.inventory import require_inventory
from labctl.render.bgp_common import announced
from tests.conftest import REFERENCE
from tests.e2e.conftest import NODES, Lab, run, simulated_lab
from tests.labctl_process import run_labctl

pytestmark = pytest.mark.e2e

SWITCHES = {"kek-core": "10.31.0.2", "astrid": "10.31.0.3"}
BLOCKS = {"fohn": "10.188.0.0/26", "chequita": "10.188.0.64/26", "wind": "10.188.0.128/26"}
PODS = {"fohn": "10.188.0.1", "chequita": "10.188.0.65", "wind": "10.188.0.129"}
UP_WITHIN = 30.0  # seconds from `bootstrap --only calico` to everything up
HOLD_TIME = 9  # cluster.calico.hold_time in the reference inventory
KEY_ENV = "LABCTL_BGP_PASSWORD_KEK"
KEY = "kek-e2e-md5-7Hq"  # the nodes' sessions to kek-core: TCP MD5 with this key
PEER = "- {switch: kek-core, address: 31.31.164.210, nodes: all}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The reference lab, its nodes' sessions to kek-core with a password: one for the
    module. Its first test builds it again (`sim down`, `sim up`) and ends on a lab as
    new as `sim up` makes one, where the second test bootstraps calico the first time."""
    keyed = f"{PEER[:-1]}, password: {{env: {KEY_ENV}}}}}"
    inventory = REFERENCE.read_text()
    assert PEER in inventory
    workdir = tmp_path_factory.mktemp("calico-lab")
    with simulated_lab(workdir, inventory.replace(PEER, keyed)) as the_lab:
        yield the_lab


def labctl(lab: Lab, *args: str, key: str = KEY) -> subprocess.CompletedProcess[str]:
    return run_labctl(*args, cwd=lab.workdir, env={**lab.env(), KEY_ENV: key})


def kept_by_labctl(lab: Lab) -> list[Path]:
    """Every file under the state directory but the simulated machines' own disks (their
    root overlays and disk images: the switch must hold its key, as a real one does)."""
    state = lab.workdir / ".labctl"
    return [
        p
        for p in state.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and not (
            p.relative_to(state).parts[:2] == ("sim", "nodes")
            and len(p.relative_to(state).parts) > 4
        )
    ]


def down_to(lab: Lab, switch: str) -> set[tuple[str, str]]:
    _, status = fabric(lab)
    return {
        (s["node"], s["peer"])
        for s in status["sessions"]
        if not s["established"] and s["peer"] == switch
    }


def fabric(lab: Lab) -> tuple[int, dict[str, Any]]:
    done = labctl(lab, "bgp", "status", "-o", "json")
    assert done.returncode in (0, 1), done.stdout + done.stderr
    status: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, status


def netns(lab: Lab, node: str) -> str:
    record = json.loads((lab.state / "sim.json").read_text())
    return str(record["nodes"][node]["netns"])


def add_pod(lab: Lab, node: str) -> None:
    """A workload address on a cali* link, as Calico gives a pod (BIRD's direct
    protocol leaves cali* alone; the node's block blackhole stands behind it)."""
    ns = netns(lab, node)
    # A veth pair, as a pod's link is (this kernel has no dummy module).
    run("ip", "-n", ns, "link", "add", "calie2e0", "type", "veth", "peer", "name", "calie2e1",
        check=True)  # fmt: skip
    run("ip", "-n", ns, "addr", "add", f"{PODS[node]}/32", "dev", "calie2e0", check=True)
    for link in ("calie2e0", "calie2e1"):
        run("ip", "-n", ns, "link", "set", link, "up", check=True)


def ping(ns: str, source: str, target: str) -> bool:
    done = run("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "2", "-I", source, target)
    if done.returncode != 0:  # what the failure report needs: both ends' routes
        for where in sorted({ns, *(f"{ns.rsplit('-', 1)[0]}-{n}" for n in NODES)}):
            print(where, run("ip", "-n", where, "route").stdout)
        print(done.stdout, done.stderr)
    return done.returncode == 0


def frr_view(lab: Lab, switch: str) -> str:
    """What FRR on ``switch`` says of its routes and sessions, and which daemons run."""
    done = lab.ssh(
        SWITCHES[switch],
        "vtysh -c 'show ip route' -c 'show bgp summary'; ps -eo pid,stat,args | grep -v grep"
        " | grep -E 'zebra|bgpd|staticd|snmpd'; tail -n 20 /var/log/labctl-systemctl.log",
    )
    return done.stdout + done.stderr


def switch_routes(lab: Lab, switch: str) -> set[str]:
    done = lab.ssh(SWITCHES[switch], "vtysh -c 'show ip route bgp json'")
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


def learned(status: dict[str, Any], switch: str) -> set[str]:
    for sw in status["switches"]:
        if sw["switch"] == switch:
            return set(sw["learned"])
    return set()


def test_a_lab_built_again_is_bootstrapped_again(lab: Lab) -> None:
    """`sim down` then `sim up` in the same place, then bootstrap: a new lab, none of
    whose units were enabled or restarted, though bootstrap's journal remembered
    doing it to the old one (it skipped them, and no BGP session ever came up).

    First in the module: it ends on a lab `sim up` has just made again (journal and
    all forgotten), the next test's lab, which would otherwise cost a lab of its own."""
    first = labctl(lab, "bootstrap", "--only", "calico")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    journal = lab.workdir / ".labctl" / "journal.jsonl"
    assert "systemctl restart frr" in journal.read_text()
    # The old lab's etcd membership record (one member joined it): gone with its etcd.
    membership = lab.workdir / ".labctl" / MEMBERSHIP
    if not membership.exists():
        MembershipRecord(membership, joined={"wind": ("wind=https://old:2380", "1")}).save()
    down = lab.labctl("sim", "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not journal.exists()
    assert not membership.exists()
    up = lab.labctl("sim", "up")
    assert up.returncode == 0, up.stdout + up.stderr
    again = labctl(lab, "bootstrap", "--only", "calico")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    code, status = fabric(lab)
    assert code == 0, status["problems"]

    # A lab whose state was removed by hand (no `sim down`): the next `up` forgets too.
    stale = labctl(lab, "bootstrap", "--only", "calico")
    assert stale.returncode == 0 and journal.exists()
    kept = journal.read_text()
    down = lab.labctl("sim", "down")
    journal.write_text(kept)
    up = lab.labctl("sim", "up")
    assert up.returncode == 0 and "journal of an earlier lab" in up.stdout, up.stdout
    assert not journal.exists() or "systemctl restart frr" not in journal.read_text()


def test_bgp_fabric_comes_up_routes_pods_and_survives_failures(lab: Lab) -> None:
    start = time.monotonic()
    done = labctl(lab, "bootstrap", "--only", "calico", "-o", "json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    took = time.monotonic() - start
    assert took < UP_WITHIN, f"bootstrap --only calico took {took:.1f} s"
    code, status = fabric(lab)
    assert code == 0, status["problems"]
    sessions = status["sessions"]
    assert len(sessions) == 12  # 6 mesh + 3 nodes x 2 switches
    assert all(s["established"] for s in sessions)
    for switch in SWITCHES:
        assert set(BLOCKS.values()) <= learned(status, switch)
    # The ingress range every node announces (advertise.external_cidrs): a /30 of the
    # public /28, so both switches route it to the nodes over their connected /28 (the
    # whole /28 once announced there was held, never installed, and held the nodes).
    ingress = {
        a.cidr for a in announced(require_inventory(REFERENCE)) if a.what == "ingress addresses"
    }
    deadline = time.monotonic() + 10
    while not all(ingress <= learned(status, switch) for switch in SWITCHES):
        assert time.monotonic() < deadline, (ingress, status["switches"])
        time.sleep(1)
        _, status = fabric(lab)

    # The switches run what labctl renders (read over SSH on their management address).
    for switch in SWITCHES:
        diff = labctl(lab, "switch", "diff", switch, "-o", "json")
        assert diff.returncode == 0, diff.stdout + diff.stderr
        assert json.loads(diff.stdout)["same"] is True
        assert KEY not in diff.stdout + diff.stderr

    # The key is on kek-core as its value, and nowhere labctl prints or keeps it.
    assert (
        f"neighbor CALICO password {KEY}"
        in lab.ssh(SWITCHES["kek-core"], "cat /etc/frr/frr.conf").stdout
    )
    shown = labctl(lab, "switch", "config", "kek-core")
    assert f"password <secret from environment variable {KEY_ENV}>" in shown.stdout
    planned = labctl(lab, "plan", "calico", "-o", "json")
    status_out = labctl(lab, "bgp", "status")
    for out in (done, shown, planned, status_out):
        assert KEY not in out.stdout + out.stderr
    kept = kept_by_labctl(lab)
    assert any(p.name == "journal.jsonl" for p in kept)
    assert [p for p in kept if KEY.encode() in p.read_bytes()] == []

    # A packet from one node's pod block to another's, both ways through the mesh routes.
    for node in ("fohn", "chequita"):
        add_pod(lab, node)
    assert ping(netns(lab, "chequita"), PODS["chequita"], PODS["fohn"])

    # Another key typed on kek-core: its three sessions go down and stay down, and a
    # bootstrap run says so (its files are as labctl wrote them, its key is not).
    other = "kek-e2e-typed-by-hand"
    typed = lab.ssh(
        SWITCHES["kek-core"],
        "vtysh -c 'configure terminal' -c 'router bgp 64513' "
        f"-c 'neighbor CALICO password {other}'",
    )
    assert typed.returncode == 0, typed.stderr
    deadline = time.monotonic() + 15
    while down_to(lab, "kek-core") != {(n, "kek-core") for n in NODES}:
        assert time.monotonic() < deadline, down_to(lab, "kek-core")
        time.sleep(0.5)
    start = time.monotonic()
    refused = labctl(lab, "bootstrap", "--only", "calico", "-o", "json")
    gave_up = time.monotonic() - start
    assert refused.returncode == 1, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert "kek-core" in refused.stdout + refused.stderr
    assert down_to(lab, "kek-core") == {(n, "kek-core") for n in NODES}
    drift = labctl(lab, "switch", "diff", "kek-core", "-o", "json")
    assert drift.returncode == 1, drift.stdout + drift.stderr
    lines = json.loads(drift.stdout)["diff"]
    assert f"- neighbor CALICO password <secret from environment variable {KEY_ENV}>" in lines
    assert "+ neighbor CALICO password <secret not shown>" in lines
    for out in (refused, drift):
        assert KEY not in out.stdout + out.stderr and other not in out.stdout + out.stderr

    # A new key in the environment reaches both ends (FRR and BIRD restart for it alone:
    # the files' masked text is the same) and the sessions come back.
    start = time.monotonic()
    rotated = labctl(lab, "bootstrap", "--only", "calico", "-o", "json", key="kek-e2e-rotated")
    rotated_in = time.monotonic() - start
    assert rotated.returncode == 0, rotated.stdout[-3000:] + rotated.stderr[-3000:]
    assert down_to(lab, "kek-core") == set()
    assert [p for p in kept_by_labctl(lab) if b"kek-e2e-rotated" in p.read_bytes()] == []

    # kek-core's FRR stops: its three sessions are named down, astrid still routes.
    assert lab.ssh(SWITCHES["kek-core"], "systemctl stop frr").returncode == 0
    deadline = time.monotonic() + 10
    while True:
        code, status = fabric(lab)
        down = {(s["node"], s["peer"]) for s in status["sessions"] if not s["established"]}
        if down == {(n, "kek-core") for n in NODES}:
            break
        assert time.monotonic() < deadline, down
        time.sleep(0.5)
    assert code == 1
    assert any("kek-core" in p and "fohn" in p for p in status["problems"])
    assert set(BLOCKS.values()) <= learned(status, "astrid")
    astrid_ns = f"lab-{json.loads((lab.state / 'sim.json').read_text())['plan']['lab_id']}-astrid"
    # through astrid's learned route (once seen failing with no BGP route in astrid's
    # kernel while BGP4-MIB said it held them all; the message shows FRR's view)
    assert ping(astrid_ns, "31.31.164.211", PODS["fohn"]), frr_view(lab, "astrid")
    assert ping(netns(lab, "chequita"), PODS["chequita"], PODS["fohn"])
    assert lab.ssh(SWITCHES["kek-core"], "systemctl start frr").returncode == 0

    # wind loses power: its block leaves both switches within the hold time.
    off = labctl(lab, "power", "off", "wind", "--force", "--yes")
    assert off.returncode == 0, off.stdout + off.stderr
    cut = time.monotonic()
    # Read the switches directly: `bgp status` would wait out SSH to the dead node.
    while any(BLOCKS["wind"] in switch_routes(lab, switch) for switch in SWITCHES):
        assert time.monotonic() - cut < HOLD_TIME + 3, "wind's block outlived the hold time"
        time.sleep(0.2)
    withdrawn = time.monotonic() - cut
    _, status = fabric(lab)
    assert BLOCKS["fohn"] in learned(status, "astrid")
    print(
        f"calico e2e: up in {took:.1f} s; wind's block withdrawn {withdrawn:.1f} s after power off;"
        f" bootstrap gave up on the wrong key in {gave_up:.1f} s; new key up in {rotated_in:.1f} s"
    )
