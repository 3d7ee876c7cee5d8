"""The simulated lab's lifecycle: up, status, down.

Everything created is recorded in ``STATE/sim.json`` as it is created, so
``down`` removes exactly that (namespaces, the host link, routes, daemons) even
after a half-finished ``up``. Needs root: namespaces, veths and mounts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from labctl.errors import LabctlError
from labctl.etcd import membership as etcd_membership
from labctl.etcd import token as etcd_token
from labctl.inventory.model import Inventory, Pdu, Server
from labctl.programs import require
from labctl.render import ceph as render_ceph
from labctl.render import etcd as render_etcd
from labctl.render.monitoring import units
from labctl.secrets.references import resolve
from labctl.sim import bmc as sim_bmc
from labctl.sim import (
    ceph_image,
    feeds,
    host_limits,
    monitoring_images,
    netns_dir,
    pdu_agent,
    pdu_record,
)
from labctl.sim import disks as sim_disks
from labctl.sim import engine as sim_engine
from labctl.sim import node as sim_node
from labctl.sim import redfish_bmc as sim_redfish
from labctl.sim import switches as sim_switches
from labctl.sim import vm as sim_vm
from labctl.sim.node import NODE_MOUNT
from labctl.sim.osrelease import write_os_release
from labctl.sim.plan import TRANSIT, SimPlan, build_plan, resize
from labctl.sim.process import ManagedProcess, stop_all
from labctl.sim.record import STATE_FILE, read_record
from labctl.sim.records import SimNode

SYSTEMCTL_SOURCE = Path(__file__).with_name("systemctl.py")


def _ip(*args: str) -> None:
    ip = require("ip", "the simulated lab builds its network with it")
    done = subprocess.run([ip, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LabctlError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


# Which state directory each simulated lab on this machine belongs to, by its fabric
# namespace: a second `sim up` of the same lab (another checkout) is refused by name.
OWNERS = Path("/run/labctl/sim")


def _owner_file(plan: SimPlan) -> Path:
    return OWNERS / f"{plan.fabric}.json"


def _claim(plan: SimPlan, state: Path) -> None:
    OWNERS.mkdir(parents=True, exist_ok=True)
    claim = {"state": str(state), "lab_id": plan.lab_id, "prefixes": list(plan.prefixes)}
    _owner_file(plan).write_text(json.dumps(claim))


def _owner_of(plan: SimPlan) -> str | None:
    """The state directory of a lab on this machine that holds this one's names or prefixes."""
    for path in sorted(OWNERS.glob("*.json")) if OWNERS.is_dir() else []:
        try:
            claim = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if path.name == _owner_file(plan).name or set(claim.get("prefixes", ())) & set(
            plan.prefixes
        ):
            return str(claim.get("state"))
    return None


def _collisions(plan: SimPlan) -> list[str]:
    """What of this lab already exists on the machine (made by another state directory)."""
    found = []
    names = set(
        subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    )
    taken = sorted(names & {plan.fabric, *(n.netns for n in (*plan.nodes, *plan.switches))})
    if taken:
        found.append(f"namespaces {', '.join(taken)}")
    link = subprocess.run(["ip", "link", "show", plan.host_link], capture_output=True, text=True)
    if link.returncode == 0:
        found.append(f"the host link {plan.host_link}")
    for prefix in plan.prefixes:
        routes = subprocess.run(["ip", "route", "show", prefix], capture_output=True, text=True)
        if any(not line.startswith("blackhole") for line in routes.stdout.splitlines()):
            found.append(f"a route to {prefix}")
    return found


def _refuse_if_taken(plan: SimPlan, state: Path) -> None:
    taken = _collisions(plan)
    if not taken:
        return
    owner = _owner_of(plan)
    if owner is not None and Path(owner) != state:
        raise LabctlError(
            f"the simulated lab {plan.lab_id} is already up from {owner}; take it down there "
            f"first (labctl sim down --state-dir {owner}) or work from that state directory; "
            "nothing was touched"
        )
    raise LabctlError(
        f"this machine already has {'; '.join(taken)}, which the simulated lab "
        f"{plan.lab_id} needs, made by another state directory or by hand; "
        "nothing was touched"
    )


def require_root() -> None:
    """Linux and root, or a sentence saying why the simulated lab needs them."""
    if not sys.platform.startswith("linux"):
        raise LabctlError(
            f"the simulated lab needs Linux (this is {sys.platform}): it is built from "
            "network namespaces, veth links and mounts; the other commands work here"
        )
    if os.geteuid() != 0:
        raise LabctlError(
            "the simulated lab needs root: it creates network namespaces, veth links, "
            "routes and mounts (run labctl sim as root, or with sudo -E)"
        )


class Record:
    """What up has made so far, saved after every step; ``data`` is a record read back."""

    def __init__(self, state: Path, data: dict[str, Any] | None = None) -> None:
        self.path = state / STATE_FILE
        self.data: dict[str, Any] = (
            data if data is not None else {"netns": [], "routes": [], "pids": {}}
        )

    def add(self, kind: str, value: Any) -> None:
        self.data[kind].append(value)
        self.save()

    def pid(self, name: str, pid: int) -> None:
        self.data["pids"][name] = pid
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(self.data, handle, indent=2)
        os.replace(tmp, self.path)


@dataclass(frozen=True)
class NodeStatus:
    name: str
    running: bool
    ssh: bool
    bmc_power: str
    outlets: str
    bmc_answers: bool | None = None  # None: not known (a record from before it was kept)


def _keygen(path: Path, comment: str) -> None:
    if not path.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True,
            capture_output=True,
        )


def sshd_config(listen: list[str], host_key: str, authorized_keys: str, pid_file: str) -> str:
    """A key-only, root-login sshd config (the simulated nodes' and the tests' sshd)."""
    return "\n".join(
        [
            *(f"ListenAddress {a}" for a in listen),
            f"HostKey {host_key}",
            f"AuthorizedKeysFile {authorized_keys}",
            f"PidFile {pid_file}",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "LogLevel ERROR",
            "",
        ]
    )


def _network(plan: SimPlan, record: Record) -> None:
    f = plan.fabric
    record.data["netns_dir"] = netns_dir.snapshot()
    record.save()
    _ip("netns", "add", f)
    record.add("netns", f)
    _ip("-n", f, "link", "set", "lo", "up")
    subprocess.run(["ip", "netns", "exec", f, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
    for bridge in plan.bridges:
        _ip("-n", f, "link", "add", bridge.name, "type", "bridge")
        _ip("-n", f, "addr", "add", bridge.address, "dev", bridge.name)
        for extra in bridge.extra:
            _ip("-n", f, "addr", "add", extra, "dev", bridge.name)
        _ip("-n", f, "link", "set", bridge.name, "up")
    _host_link(plan, record)
    for node in (*plan.nodes, *plan.switches):
        _node_network(plan, node, record)
    for switch in plan.switches:  # a switch routes (FRR's config assumes it)
        for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"):
            subprocess.run(
                ["ip", "netns", "exec", switch.netns, "sysctl", "-qw", f"{key}=1"], check=True
            )


def _node_network(
    plan: SimPlan, node: SimNode, record: Record, taken: frozenset[str] = frozenset()
) -> None:
    """The node's namespace and its NICs, veths into the fabric's bridges.

    ``taken``: link names the fabric already has (a lab that grew after a server left
    may hold the name the plan gives a newcomer's veth); another free one is used.
    """
    f = plan.fabric
    _ip("netns", "add", node.netns)
    record.add("netns", node.netns)
    _ip("-n", node.netns, "link", "set", "lo", "up")
    for nic in node.nics:
        peer = _free_name(nic.peer, taken)
        taken = taken | {peer}
        _ip("link", "add", peer, "netns", f, "type", "veth", "peer", "name", nic.name,
            "netns", node.netns)  # fmt: skip
        _ip("-n", node.netns, "link", "set", nic.name, "address", nic.mac)
        for address in nic.addresses:
            _ip("-n", node.netns, "addr", "add", address, "dev", nic.name)
        _ip("-n", node.netns, "link", "set", nic.name, "up")
        _ip("-n", f, "link", "set", peer, "master", nic.bridge, "up")
    if node.gateway:
        _ip("-n", node.netns, "route", "add", "default", "via", node.gateway)


def _free_name(name: str, taken: frozenset[str]) -> str:
    """``name``, or the first of ``name`` with a letter after it no link holds (15 max)."""
    if name not in taken:
        return name
    stem = name[:14]
    return next(f"{stem}{c}" for c in "abcdefghijklmnopqrstuvwxyz" if f"{stem}{c}" not in taken)


def _host_link(plan: SimPlan, record: Record) -> None:
    """The host's veth into the fabric, and the lab's prefixes routed through it."""
    f = plan.fabric
    peer = f"lf{plan.lab_id}"
    _ip("link", "add", plan.host_link, "type", "veth", "peer", "name", peer, "netns", f)
    if plan.host_link not in record.data["links"]:
        record.add("links", plan.host_link)
    _ip("addr", "add", plan.host_address, "dev", plan.host_link)
    _ip("link", "set", plan.host_link, "up")
    _ip("-n", f, "addr", "add", plan.fabric_address, "dev", peer)
    _ip("-n", f, "link", "set", peer, "up")
    for prefix in plan.prefixes:
        _route(plan, record, prefix)


def _route(plan: SimPlan, record: Record, prefix: str) -> None:
    subprocess.run(["ip", "route", "del", prefix, "dev", plan.host_link], capture_output=True)
    _ip("route", "add", prefix, "via", str(TRANSIT[2]), "dev", plan.host_link, "metric", "100")
    # If the link ever goes, lab addresses are dropped here instead of leaving the machine.
    subprocess.run(["ip", "route", "del", "blackhole", prefix], capture_output=True)
    _ip("route", "add", "blackhole", prefix, "metric", "4000")
    if prefix not in record.data["routes"]:
        record.add("routes", prefix)


def _alive(pid: int | None) -> bool:
    return pid is not None and ManagedProcess(pid).running()


def _relaunch(state_dir: Path) -> int:
    """Start a BMC or PDU agent again the way it was started (its argv.json)."""
    launch = json.loads((state_dir / "argv.json").read_text())
    process = subprocess.Popen(
        launch["argv"], env=launch["env"], stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    return process.pid


def _dark(state: Path, name: str) -> bool:
    """Whether the server has outlets in the lab and every one of them is off."""
    table = state / "feeds.json"
    wired = json.loads(table.read_text()).get(name) if table.exists() else None
    return bool(wired) and not feeds.fed(state, name)


def repair(plan: SimPlan, state: Path) -> tuple[list[str], list[str]]:
    """Make again what is missing of a lab that is up: (repaired, cannot repair)."""
    record = Record(state, read_record(state))
    record.data.setdefault("links", [plan.host_link])
    done: list[str] = []
    cannot: list[str] = []
    names = set(
        subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    )
    lost = sorted({plan.fabric, *(n.netns for n in plan.nodes)} - names)
    if lost:
        cannot.append(
            f"namespaces {', '.join(lost)} are gone; take the lab down and up again "
            "(labctl sim down; labctl sim up)"
        )
        return done, cannot
    if subprocess.run(["ip", "link", "show", plan.host_link], capture_output=True).returncode:
        _host_link(plan, record)
        done.append(f"the host link {plan.host_link} and its routes")
    else:
        for prefix in plan.prefixes:
            routes = subprocess.run(["ip", "route", "show", prefix], capture_output=True, text=True)
            if plan.host_link not in routes.stdout:
                _route(plan, record, prefix)
                done.append(f"the route to {prefix}")
    for key in record.data["pids"]:
        kind, _, name = key.partition(":")
        if kind not in ("bmc", "pdu"):
            continue
        folder = state / f"{kind}s" / name
        daemon = folder / "daemon.pid"
        pid = int(daemon.read_text()) if daemon.exists() else record.data["pids"][key]
        if _alive(pid):
            continue
        if kind == "bmc" and not feeds.fed(state, name):
            continue  # dark because its outlets are off: as it should be
        new = _relaunch(folder)
        if kind == "bmc":
            daemon.write_text(str(new))
        else:
            record.pid(key, new)
        done.append(f"{'the BMC of ' if kind == 'bmc' else 'the SNMP agent of PDU '}{name}")
    started = []
    vms = set(read_record(state).get("vms", []))
    for node in plan.nodes:
        if node.name in vms:
            continue  # its power is the VM's (sim/vm.py), not a node to restart here
        power = state / "bmcs" / node.name / "power"
        powered = not power.exists() or power.read_text().strip() == "on"
        if powered and _dark(state, node.name):
            continue  # every outlet feeding it is off: dark, as it should be
        running = sim_node.pid(state, node.name) is not None
        if powered and not running:
            sim_node.start(state, node.name)
            done.append(f"{node.name} (its node was not running)")
            started.append(node)
        elif running and not sim_node.wait_ssh(node.ssh_address, timeout=1.0):
            sim_node.stop(state, node.name)
            sim_node.start(state, node.name)
            done.append(f"{node.name} (its sshd did not answer; the node was restarted)")
            started.append(node)
    for node in started:
        if not sim_node.wait_ssh(node.ssh_address):
            cannot.append(f"{node.name}: sshd still does not answer on {node.ssh_address}:22")
    return done, cannot


def _running_macs(record: Record) -> dict[str, dict[str, str]]:
    """Each node the lab has: its NICs' MACs as its namespace shows them (empty: unread)."""
    found: dict[str, dict[str, str]] = {}
    for name, info in record.data.get("nodes", {}).items():
        shown = subprocess.run(
            ["ip", "-n", info["netns"], "-j", "link", "show"], capture_output=True, text=True
        )
        try:
            links = json.loads(shown.stdout) if shown.returncode == 0 else []
        except ValueError:
            links = []
        found[name] = {
            link["ifname"]: link.get("address", "").lower()
            for link in links
            if link.get("ifname") != "lo"
        }
    return found


def _fabric_links(plan: SimPlan) -> frozenset[str]:
    shown = subprocess.run(
        ["ip", "-n", plan.fabric, "-j", "link", "show"], capture_output=True, text=True
    )
    try:
        return frozenset(link["ifname"] for link in json.loads(shown.stdout or "[]"))
    except ValueError:
        return frozenset()


def _bridge_address(plan: SimPlan, address: str) -> tuple[str, str] | None:
    """The fabric bridge and CIDR a BMC's address sits on, as the plan places it."""
    for bridge in plan.bridges:
        for extra in bridge.extra:
            if extra.split("/")[0] == address:
                return bridge.name, extra
    return None


def _remove_node(name: str, state: Path, record: Record) -> None:
    """A server gone from the lab: its node, BMC, namespace, BMC address, outlets' hooks."""
    sim_node.stop(state, name)
    daemon = state / "bmcs" / name / "daemon.pid"
    bmc_pid = int(daemon.read_text()) if daemon.exists() else record.data["pids"].get(f"bmc:{name}")
    if bmc_pid is not None and _alive(bmc_pid):
        ManagedProcess(bmc_pid).stop(timeout=3.0)
    answer = record.data.get("answers", {}).pop(f"bmc:{name}", None)
    fabric = record.data["plan"]["fabric"]
    if answer is not None:  # its BMC's address off the management bridge
        shown = subprocess.run(
            ["ip", "-n", fabric, "-j", "addr", "show"], capture_output=True, text=True
        )
        for link in json.loads(shown.stdout or "[]"):
            for info in link.get("addr_info", []):
                if info.get("local") == answer[0]:
                    cidr = f"{answer[0]}/{info['prefixlen']}"
                    _ip("-n", fabric, "addr", "del", cidr, "dev", link["ifname"])
    netns = record.data["nodes"].pop(name)["netns"]
    subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
    if netns in record.data["netns"]:
        record.data["netns"].remove(netns)
    record.data["pids"].pop(f"node:{name}", None)
    record.data["pids"].pop(f"bmc:{name}", None)
    record.save()
    feeds_file = state / "feeds.json"
    if feeds_file.exists():
        table = json.loads(feeds_file.read_text())
        table.pop(name, None)
        feeds_file.write_text(json.dumps(table))
    for config_file in (state / "pdus").glob("*/pdu.json"):
        config = json.loads(config_file.read_text())
        hooks = config.get("hooks", {})
        config["hooks"] = {n: h for n, h in hooks.items() if name not in h.get("on", [])}
        config_file.write_text(json.dumps(config))
    shutil.rmtree(sim_node.node_dir(state, name), ignore_errors=True)
    shutil.rmtree(state / "bmcs" / name, ignore_errors=True)


def _add_node(
    inventory: Inventory,
    plan: SimPlan,
    node: SimNode,
    state: Path,
    base_dir: Path,
    record: Record,
    progress: Callable[[str], None],
) -> str | None:
    """A server new to an up lab, made as ``up`` makes each: a sentence if it stays dark."""
    server = inventory.server(node.name)
    fabric_links = _fabric_links(plan)
    missing = sorted({nic.bridge for nic in node.nics} - fabric_links)
    if missing:
        raise LabctlError(
            f"{node.name} is cabled to networks the lab was not built with (bridges "
            f"{', '.join(missing)}); take the lab down and up again (labctl sim down; "
            "labctl sim up)"
        )
    _node_network(plan, node, record, fabric_links)
    where = _bridge_address(plan, server.bmc.address)
    if where is not None:  # replace: an address a removed server left is taken over
        _ip("-n", plan.fabric, "addr", "replace", where[1], "dev", where[0])
    _node_files(plan, node, state, record.data.get("login_user", "root"))
    _known_hosts(plan, state)
    if record.data.get("engine"):
        _engine(inventory, state, plan, progress, only=frozenset({node.name}))
    sim_disks.make(
        inventory, {node.name: sim_node.node_dir(state, node.name)}, sim_disks.disk_size()
    )
    write_os_release(inventory, state, [node.name])
    record.data["nodes"][node.name] = {"netns": node.netns, "ssh": node.ssh_address}
    record.pid(f"node:{node.name}", sim_node.start(state, node.name))
    _bmc(inventory, server, plan, state, base_dir, record)
    record.save()  # where its BMC answers: status asks it, a later removal finds its address
    feeds_file = state / "feeds.json"
    table = json.loads(feeds_file.read_text()) if feeds_file.exists() else {}
    table[node.name] = _feeds(inventory).get(node.name, [])
    feeds_file.write_text(json.dumps(table))
    for pdu in inventory.pdus:
        config_file = state / "pdus" / pdu.name / "pdu.json"
        if not config_file.exists():
            continue
        config = json.loads(config_file.read_text())
        for outlet, hooks in _outlet_hooks(inventory, pdu, state).items():
            if node.name in hooks["on"]:
                config["hooks"][str(outlet)] = {k: list(v) for k, v in hooks.items()}
        config_file.write_text(json.dumps(config))
    if table[node.name] and not feeds.fed(state, node.name):
        feeds.apply(state, node.name)  # plugged into outlets that are off: it stays dark
        outlets = ", ".join(f"{pdu}/{outlet}" for pdu, outlet in table[node.name])
        return (
            f"{node.name}'s outlets ({outlets}) are off: it stays dark until one is "
            f"switched on (labctl power on {node.name} --via pdu)"
        )
    return None


def _resize(
    inventory: Inventory,
    plan: SimPlan,
    state: Path,
    base_dir: Path,
    progress: Callable[[str], None],
) -> list[str]:
    """Make an up lab's servers the inventory's: new ones added, ones gone (or replaced
    by another machine under the same name) removed when they no longer run.

    The servers that stay are not touched: their nodes, BMCs and links keep running.
    Returns what was done and what was kept, as sentences.
    """
    record = Record(state, read_record(state))
    change = resize(plan, _running_macs(record))
    if not change:
        return []
    vms = set(record.data.get("vms", []))
    said: list[str] = []
    wanted = {n.name: n for n in plan.nodes}
    for name in (*change.leave, *change.replace):
        if name in vms:
            said.append(f"kept {name}: a VM node is not removed from an up lab")
            continue
        if sim_node.pid(state, name) is not None:
            why = "is no longer in the inventory" if name in change.leave else "has other MACs"
            said.append(
                f"kept {name}: it {why} but its node still runs; run labctl reset {name} "
                "(it powers the server off), then labctl sim up"
            )
            continue
        progress(f"removing {name}'s node, BMC and links")
        _remove_node(name, state, record)
        said.append(
            f"removed {name} (node, BMC, links{', disks' if name in change.replace else ''})"
        )
    raised = _raise_limits(plan, record)
    if raised:
        said.append(f"raised the host's limits: {raised}")
    started = []
    for name in (*change.join, *change.replace):
        if name in record.data["nodes"]:
            continue  # kept above
        progress(f"adding {name}: namespace, links, BMC, outlets")
        dark = _add_node(inventory, plan, wanted[name], state, base_dir, record, progress)
        said.append(
            f"added {name}"
            + (" (a new machine: new MACs, disks and host key)" if name in change.replace else "")
        )
        if dark:
            said.append(dark)
        else:
            started.append(wanted[name])
    for node in started:
        if not sim_node.wait_ssh(node.ssh_address):
            raise LabctlError(f"{node.name}: sshd did not answer on {node.ssh_address}:22")
    return said


def _raise_limits(plan: SimPlan, record: Record) -> str:
    """The host's inotify limits raised for every node and switch of ``plan``, what
    was found kept in the record for ``down`` (``host_limits``); what changed, or ""."""
    raised = host_limits.raise_for(len(plan.nodes) + len(plan.switches), record.data)
    record.save()
    return ", ".join(raised)


def _nodes(plan: SimPlan, state: Path, login_user: str) -> None:
    operator = state / "id_ed25519"
    _keygen(operator, "labctl-sim-operator")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    for node in (*plan.nodes, *plan.switches):
        _node_files(plan, node, state, login_user)
    _known_hosts(plan, state)


def _node_files(plan: SimPlan, node: SimNode, state: Path, login_user: str) -> None:
    """The node's host key, sshd config, the operator's key and its systemctl stand-in."""
    operator = state / "id_ed25519"
    d = sim_node.node_dir(state, node.name)
    d.mkdir(parents=True, exist_ok=True)
    _keygen(d / "ssh_host_ed25519_key", node.name)
    (d / "authorized_keys").write_text(operator.with_suffix(".pub").read_text())
    config = sshd_config(
        [f"{a}:22" for a in node.listen],
        f"{NODE_MOUNT}/ssh_host_ed25519_key",
        f"{NODE_MOUNT}/authorized_keys",
        "/run/sshd.pid",
    )
    (d / "sshd_config").write_text(config)
    (d / "node.json").write_text(json.dumps({"netns": node.netns, "login_user": login_user}))
    # The systemctl stand-in, in the node's own /usr/local (an overlay layer).
    tool = d / "upper" / "usr-local" / "bin" / "systemctl"
    tool.parent.mkdir(parents=True, exist_ok=True)
    tool.write_text("#!/usr/bin/python3\n" + SYSTEMCTL_SOURCE.read_text())
    tool.chmod(0o755)
    if node in plan.switches:
        sim_switches.prepare(d)


def _known_hosts(plan: SimPlan, state: Path) -> None:
    """Every node's and switch's host key, as the operator's known_hosts names them."""
    known = []
    for node in (*plan.nodes, *plan.switches):
        key_file = sim_node.node_dir(state, node.name) / "ssh_host_ed25519_key.pub"
        if key_file.exists():
            key = key_file.read_text().split()
            known.append(f"{','.join((node.name, *node.listen))} {key[0]} {key[1]}")
    (state / "known_hosts").write_text("\n".join(known) + "\n")


def _engine(
    inventory: Inventory,
    state: Path,
    plan: SimPlan,
    progress: Callable[[str], None],
    only: frozenset[str] | None = None,
) -> dict[str, list[str]]:
    """Podman on every node with the etcd image the inventory names, loaded at boot, when
    this machine has podman (``sim env`` then overrides no runtime): what the nodes got."""
    if not sim_engine.available():
        return {}
    image = render_etcd.image(inventory)
    built = sim_engine.etcd_source(image)
    source = f"from {built}" if built else "from this machine's etcd"
    progress(f"container engine: podman on every node, image {image} made here {source}")
    archive = sim_engine.build(sim_engine.etcd_image(image, built))
    got: dict[str, list[str]] = {"images": [image], "runtimes": ["etcd"]}
    # The Ceph image (cluster.ceph.image or its default), made from Debian's Ceph, on the
    # nodes that run Ceph daemons, when the inventory runs them in containers.
    # It is a few hundred MiB: loaded once into a read-only image store every Ceph node's
    # podman reads, not once per node at each first boot.
    stores: tuple[str, ...] = ()
    ceph_nodes: set[str] = set()
    ceph_servers = (
        {s.name for s in render_ceph.ceph_servers(inventory)}
        if inventory.cluster.ceph is not None
        else set()
    )
    if (
        inventory.cluster.ceph is not None
        and (only is None or ceph_servers & only)  # a lab that grows: only if it needs it
        and render_ceph.runtime(inventory) == "container"
    ):
        name = render_ceph.image(inventory)
        progress(f"container engine: image {name} made here from Debian's Ceph packages")
        stores = (str(ceph_image.store(name, _ceph_archive(inventory, progress))),)
        ceph_nodes = {s.name for s in render_ceph.ceph_servers(inventory)}
        got["images"].append(name)
        got["runtimes"].append("ceph")
    # The monitoring programs' images (cluster.monitoring.images), made from Debian's
    # binaries: node-exporter runs on every node, so their one store is every node's.
    progress("container engine: the monitoring images made here from Debian's programs")
    monitoring = monitoring_images.store(monitoring_images.build(inventory))
    got["images"] += [units.image(inventory, p) for p in units.PROGRAMS.values()]
    got["runtimes"].append("monitoring")
    for node in plan.nodes:
        if only is not None and node.name not in only:
            continue  # a lab that grows: the nodes it had keep theirs
        d = sim_node.node_dir(state, node.name)
        node_stores = (*(stores if node.name in ceph_nodes else ()), str(monitoring))
        sim_engine.prepare(d, NODE_MOUNT, [archive], node_stores)
    return got


def _ceph_archive(inventory: Inventory, progress: Callable[[str], None]) -> Path:
    """The archive of the Ceph image the inventory names, of the release its tag (or
    cluster.ceph.version) names: ceph_image.build under the engine's image cache."""
    settings = inventory.cluster.ceph
    version = settings.version if settings is not None else None
    return ceph_image.build(render_ceph.image(inventory), sim_engine.image_dir(), version, progress)


def _ceph_image_again(
    inventory: Inventory, state: Path, progress: Callable[[str], None]
) -> list[str]:
    """On a lab that is up, the Ceph image the inventory names now (``cluster.ceph.image``
    changed to a mirror's name, as an air-gapped lab retags): made here as at `sim up`
    and its store added to every running Ceph node's podman, as a mirror would be
    synced before the roll. What was done (nothing when the nodes have it)."""
    if not sim_engine.available() or inventory.cluster.ceph is None:
        return []
    if render_ceph.runtime(inventory) != "container":
        return []
    name = render_ceph.image(inventory)
    store = str(ceph_image.store(name, _ceph_archive(inventory, progress)))
    given = []
    for server in render_ceph.ceph_servers(inventory):
        d = sim_node.node_dir(state, server.name)
        if not (d / sim_engine.NODE_FOLDER / "storage.conf").exists():
            continue
        if not sim_engine.add_store(d, NODE_MOUNT, store):
            continue
        pid = sim_node.pid(state, server.name)
        if pid is not None:  # a node that is off copies it at its next boot
            folder = f"{NODE_MOUNT}/{sim_engine.NODE_FOLDER}"
            subprocess.run(
                ["nsenter", "-t", str(pid), "-m", "cp", f"{folder}/storage.conf",
                 "/etc/containers/storage.conf"],
                check=True, capture_output=True,
            )  # fmt: skip
        given.append(server.name)
    if not given:
        return []
    progress(f"container engine: image {name} made here, given to {', '.join(given)}")
    return [f"the Ceph image {name} on {', '.join(given)}"]


def _hooks(state: Path, name: str) -> dict[str, tuple[str, ...]]:
    base = (sys.executable, "-m", "labctl.sim.node")
    return {verb: (*base, verb, name, str(state)) for verb in ("start", "stop")}


class _BmcBasics(TypedDict):
    name: str
    address: str
    port: int
    username: str
    password: str
    state_dir: Path
    power_on: tuple[str, ...]
    power_off: tuple[str, ...]
    status_pidfile: Path
    initially_on: bool


def _bmc_basics(
    server: Server, password: str, power_hooks: dict[str, tuple[str, ...]], state: Path
) -> _BmcBasics:
    """What every simulated BMC is given, whichever protocol it speaks: the server's BMC
    fields, its state folder, the chassis hooks it switches and the node it reports on."""
    return {
        "name": server.name,
        "address": server.bmc.address,
        "port": server.bmc.port,
        "username": server.bmc.username,
        "password": password,
        "state_dir": state / "bmcs" / server.name,
        "power_on": power_hooks["start"],
        "power_off": power_hooks["stop"],
        "status_pidfile": sim_node.node_dir(state, server.name) / "pid",
        "initially_on": True,
    }


def _redfish_bmc(
    server: Server,
    password: str,
    power_hooks: dict[str, tuple[str, ...]],
    plan: SimPlan,
    state: Path,
    record: Record,
) -> None:
    """The sushy-tools Redfish emulator as the server's BMC (``redfish_bmc.py``)."""
    spec = sim_redfish.RedfishBmcSpec(
        **_bmc_basics(server, password, power_hooks, state), scheme=server.bmc.scheme
    )
    handle = sim_redfish.start(state, spec, netns=plan.fabric)
    record.pid(f"bmc:{server.name}", handle.pid)
    where = [spec.address, spec.port, spec.scheme]
    record.data.setdefault("answers", {})[f"bmc:{server.name}"] = where
    sim_redfish.wait_answering(handle, spec)


def _devices(
    inventory: Inventory,
    plan: SimPlan,
    state: Path,
    base_dir: Path,
    record: Record,
    vms: tuple[str, ...] = (),
) -> None:
    for server in inventory.servers:
        _bmc(inventory, server, plan, state, base_dir, record, vms)
    _pdus(inventory, plan, state, base_dir, record)


def _bmc(
    inventory: Inventory,
    server: Server,
    plan: SimPlan,
    state: Path,
    base_dir: Path,
    record: Record,
    vms: tuple[str, ...] = (),
) -> None:
    """The server's BMC (ipmi_sim, or the Redfish emulator) in the fabric, answering."""
    password = resolve(
        server.bmc.password, used_at=f"{server.name} BMC password", base_dir=base_dir
    )
    power_hooks = _hooks(state, server.name)
    if server.bmc.redfish:
        _redfish_bmc(server, password, power_hooks, plan, state, record)
        return
    spec = sim_bmc.BmcSpec(
        **_bmc_basics(server, password, power_hooks, state),
        # A VM node's board reaches its BMC here (sim/vm.py says why loopback).
        vm_port=sim_vm.ipmi_port(inventory, server.name) if server.name in vms else None,
    )
    handle = sim_bmc.start(spec, netns=plan.fabric)
    record.pid(f"bmc:{server.name}", handle.pid)
    record.data.setdefault("answers", {})[f"bmc:{server.name}"] = [spec.address, spec.port]
    sim_bmc._wait_listening(handle, spec, 10.0)


def _feeds(inventory: Inventory) -> dict[str, list[tuple[str, int]]]:
    """Device -> the (PDU, outlet) pairs feeding it."""
    found: dict[str, list[tuple[str, int]]] = {}
    for pdu in inventory.pdus:
        for outlet in pdu.outlets:
            found.setdefault(outlet.device, []).append((pdu.name, outlet.outlet))
    return found


def _outlet_hooks(
    inventory: Inventory, pdu: Pdu, state: Path
) -> dict[int, dict[str, tuple[str, ...]]]:
    """What each of the PDU's outlets runs when switched: the feed of the server behind it."""
    hooks: dict[int, dict[str, tuple[str, ...]]] = {}
    for outlet in pdu.outlets:
        if outlet.device in {s.name for s in inventory.servers}:
            feed = (sys.executable, "-m", "labctl.sim.feeds", outlet.device, str(state))
            hooks[outlet.outlet] = {"on": feed, "off": feed}
    return hooks


def _pdus(inventory: Inventory, plan: SimPlan, state: Path, base_dir: Path, record: Record) -> None:
    feeds = _feeds(inventory)
    for pdu in inventory.pdus:
        snmp = pdu.snmp
        where = f"PDU {pdu.name}"
        community = username = auth_key = priv_key = ""
        if snmp.community:
            community = resolve(snmp.community, used_at=where, base_dir=base_dir)
        if snmp.username and snmp.auth_key and snmp.priv_key:
            username = snmp.username
            auth_key = resolve(snmp.auth_key, used_at=where, base_dir=base_dir)
            priv_key = resolve(snmp.priv_key, used_at=where, base_dir=base_dir)
        hooks = _outlet_hooks(inventory, pdu, state)
        spec_pdu = pdu_agent.PduSpec(
            name=pdu.name,
            address=pdu.address,
            port=snmp.port,
            state_dir=state / "pdus" / pdu.name,
            # The unit answers as its vendor's MIB says (the record), whatever
            # profile or overrides the inventory gives labctl to talk to it.
            record=pdu_record.for_model(pdu.model, where=where).path,
            outlet_count=pdu.outlet_count,
            hooks=hooks,
            community=community,
            username=username,
            auth_key=auth_key,
            priv_key=priv_key,
        )
        handle_pdu = pdu_agent.start(spec_pdu, netns=plan.fabric)
        record.pid(f"pdu:{pdu.name}", handle_pdu.pid)
        record.data.setdefault("answers", {})[f"pdu:{pdu.name}"] = [spec_pdu.address, spec_pdu.port]
        pdu_agent._wait_ready(handle_pdu, spec_pdu, 10.0)
    (state / "feeds.json").write_text(json.dumps(feeds))


def up(
    inventory: Inventory,
    inventory_path: Path,
    state: Path,
    progress: Callable[[str], None] = lambda _: None,
    vms: tuple[str, ...] = (),
    journal: Path | None = None,
) -> str:
    """Bring the lab up; ``progress`` hears each phase as it starts.

    ``vms`` names servers that are VM nodes (``sim/vm.py``) instead of namespace nodes,
    each ``NAME`` or ``NAME:uefi`` (its firmware; SeaBIOS by default).

    ``journal`` is bootstrap's journal for this lab. It remembers commands it ran on
    machines (units enabled, daemons restarted) and skips them when asked again; a lab
    built from nothing has none of them done, so a fresh lab starts it empty, and
    ``down`` removes it with the lab.
    """
    for pdu in inventory.pdus:  # a PDU model no device record answers for fails first
        pdu_record.for_model(pdu.model, where=f"PDU {pdu.name}")
    require_root()
    choices = sim_vm.parse_choices(vms)  # a bad choice fails before anything is made
    vms = tuple(choices)
    redfish = [s.name for s in inventory.servers if s.bmc.redfish]
    if redfish:
        sim_redfish.require()
    if set(redfish) & set(choices):
        raise LabctlError(
            f"{', '.join(sorted(set(redfish) & set(choices)))}: a VM node's board reaches its "
            "BMC over IPMI's KCS interface (ipmi_sim), so its bmc.type cannot be redfish "
            "in the simulated lab; nothing was made"
        )
    plan = build_plan(inventory)
    if (state / STATE_FILE).exists():
        resized = _resize(inventory, plan, state, inventory_path.parent, progress)
        repaired, cannot = repair(plan, state)
        repaired += _ceph_image_again(inventory, state, progress)
        if cannot:
            fixed = f"repaired {'; '.join(repaired)}; but " if repaired else ""
            raise LabctlError(f"the simulated lab {plan.lab_id}: {fixed}{'; '.join(cannot)}")
        if resized:
            also = f"; repaired {'; '.join(repaired)}" if repaired else ""
            return f"the simulated lab {plan.lab_id}: {'; '.join(resized)}{also}"
        if not repaired:
            return f"the simulated lab {plan.lab_id} is already up; nothing changed"
        return f"the simulated lab {plan.lab_id} is up again: repaired {'; '.join(repaired)}"
    # An etcd image whose tag says another version than this machine's etcd is refused
    # before anything is made (the image is made from that etcd).
    in_container = render_etcd.runtime(inventory) == "container"
    sim_engine.etcd_source(render_etcd.image(inventory), in_container)
    # So is a Ceph release the nodes cannot run: with runtime host, any but this
    # machine's (its daemons are what the nodes run); in containers, one no Debian suite
    # this machine knows ships (the image is made from Debian's packages of it).
    settings = inventory.cluster.ceph
    have = sim_engine.host_ceph_version()
    if settings is not None and render_ceph.runtime(inventory) == "container":
        if sim_engine.available():
            ceph_image.check(render_ceph.image(inventory), settings.version)
    elif settings is not None and settings.version and have:
        why = sim_engine.ceph_refusal(settings.version, have)
        if why:
            raise LabctlError(why)
    # And a monitoring image whose tag is not the version of Debian's program.
    if sim_engine.available():
        monitoring_images.check(inventory)
    _refuse_if_taken(plan, state)
    sim_disks.disk_size()  # a bad LABCTL_SIM_DISK_SIZE fails before anything is made
    login_user = inventory.lab.ssh.user
    if login_user != "root":
        absent = [tool for tool in ("useradd", "sudo") if shutil.which(tool) is None]
        if absent:
            raise LabctlError(
                f"the simulated nodes give {login_user} passwordless sudo, as CoreOS does, "
                f"but {' and '.join(absent)} is not installed (Debian packages passwd and "
                "sudo; scripts/setup.sh installs them)"
            )
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    record = Record(state)
    record.data["login_user"] = login_user
    record.data["plan"] = {
        "fabric": plan.fabric,
        "host_link": plan.host_link,
        "lab_id": plan.lab_id,
    }
    record.data["nodes"] = {n.name: {"netns": n.netns, "ssh": n.ssh_address} for n in plan.nodes}
    record.data["links"] = []
    forgot = ""
    if journal is not None:
        record.data["journal"] = str(journal)
        if journal.exists():
            journal.unlink()
            forgot = f" (bootstrap's journal of an earlier lab, {journal}, is forgotten)"
    record.save()
    _claim(plan, state)
    try:
        raised = _raise_limits(plan, record)
        if raised:
            progress(f"host limits for the lab's nodes: {raised}")
        progress(f"networks: {len(plan.bridges)} bridges, {len(plan.nodes)} node namespaces")
        _network(plan, record)
        progress(f"nodes: host keys, overlays and sshd for {len(plan.nodes)}")
        _nodes(plan, state, login_user)
        record.data["engine"] = _engine(inventory, state, plan, progress)
        record.save()
        sim_switches.prepare_snmp(inventory, state, inventory_path.parent)
        dirs = {n.name: sim_node.node_dir(state, n.name) for n in plan.nodes}
        sim_disks.make(inventory, dirs, sim_disks.disk_size())
        write_os_release(inventory, state, [n.name for n in plan.nodes])
        for n in plan.nodes:
            record.pid(f"node:{n.name}", sim_node.start(state, n.name))
        for n in plan.switches:  # not in record["nodes"]: no BMC, no power
            record.pid(f"switch:{n.name}", sim_node.start(state, n.name))
        progress(f"devices: {len(inventory.servers)} BMCs, {len(inventory.pdus)} PDUs")
        if redfish:
            progress(
                f"Redfish BMCs ({', '.join(redfish)}): certificates from the lab's BMC CA, "
                f"{state / sim_redfish.CA_CERT} (name it in bmc.ca_file)"
            )
        _devices(inventory, plan, state, inventory_path.parent, record, vms)
        progress("waiting for every node's sshd")
        for n in (*plan.nodes, *plan.switches):
            if not sim_node.wait_ssh(n.ssh_address):
                raise LabctlError(f"{n.name}: sshd did not answer on {n.ssh_address}:22")
        if vms:
            progress(f"VM nodes: {', '.join(f'{n} ({f})' for n, f in choices.items())}")
            sim_vm.setup_all(inventory, plan, state, choices)
            record.data["vms"] = list(vms)
            record.save()
    except BaseException:
        down(state)
        raise
    return f"the simulated lab {plan.lab_id} is up: {len(plan.nodes)} nodes{forgot}"


def down(state: Path) -> str:
    require_root()
    if not (state / STATE_FILE).exists():
        return "no simulated lab here; nothing to do"
    record = Record(state, read_record(state))
    # Everything at once, with one deadline: one by one, 30 servers took a minute.
    processes = [
        ManagedProcess(pid)
        for name in record.data.get("nodes", {})
        if (pid := sim_node.pid(state, name)) is not None
    ]
    processes += [
        ManagedProcess(pid)
        for key, pid in record.data["pids"].items()
        if not key.startswith("node:")
    ]
    processes += [ManagedProcess(pid) for pid in sim_vm.processes(state)]
    for daemon in (state / "bmcs").glob("*/daemon.pid"):  # BMCs restarted by a PDU since up
        processes.append(ManagedProcess(int(daemon.read_text())))
    stop_all(processes)
    for name in record.data.get("nodes", {}):
        sim_node.release_cgroups(state, name)
    for prefix in record.data["routes"]:
        subprocess.run(
            ["ip", "route", "del", "blackhole", prefix], capture_output=True, check=False
        )
        subprocess.run(
            ["ip", "route", "del", prefix, "dev", record.data["plan"]["host_link"]],
            capture_output=True,
            check=False,
        )
    for netns in reversed(record.data["netns"]):
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
    netns_dir.restore(record.data.get("netns_dir"))
    # Only the link this state directory made: a lab that failed to start beside
    # another must not take that one's link with it. (Records from before links
    # were recorded made theirs.)
    for link in record.data.get("links", [record.data["plan"]["host_link"]]):
        subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)
    owner = OWNERS / f"{record.data['plan']['fabric']}.json"
    with contextlib.suppress(OSError, ValueError):
        if json.loads(owner.read_text()).get("state") == str(state):
            owner.unlink()
    host_limits.restore(record.data)
    shutil.rmtree(state)
    journal = record.data.get("journal")
    if journal:  # what bootstrap remembers doing to machines that are gone now
        Path(journal).unlink(missing_ok=True)
        # The lab's etcd is gone with its machines: the next `up` and bootstrap form a
        # new cluster, which must get a new token (as after `labctl reset --all`), not
        # the old one's ids, and no membership record of who joined or left the old one
        # (a stale one renders members with an initial cluster that no longer exists).
        # Both are kept beside the journal (bootstrap's state).
        etcd_token.forget(Path(journal).parent)
        etcd_membership.forget(Path(journal).parent)
    return "the simulated lab is down; everything it made is gone"


# An ASF presence ping (RMCP class 6): any BMC answers it without a session.
_RMCP_PING = bytes.fromhex("0600ff06000011be80010000")


def _bmc_answers(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        try:
            s.sendto(_RMCP_PING, (address, port))
            data = s.recv(512)
        except OSError:
            return False
    return len(data) > 8 and data[8] == 0x40  # presence pong


def _snmp_answers(address: str, port: int) -> bool:
    """Whether an SNMP agent answers at all: an unknown v3 user earns a report, not silence."""
    done = subprocess.run(
        ["snmpget", "-v3", "-l", "noAuthNoPriv", "-u", "labctl-probe", "-r", "0", "-t", "1",
         f"{address}:{port}", "1.3.6.1.2.1.1.3.0"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return "Timeout" not in done.stderr and "No Response" not in done.stderr


@dataclass(frozen=True)
class LabStatus:
    nodes: list[NodeStatus]
    problems: list[str]  # every part that does not answer or is missing, as a sentence

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.problems,
            "nodes": [n.__dict__ for n in self.nodes],
            "problems": self.problems,
        }


def status(state: Path) -> LabStatus:
    """Each part checked for real: host link and routes, nodes, sshd, BMCs, PDU agents."""
    record = read_record(state)
    plan = record["plan"]
    feeds: dict[str, list[list[Any]]] = (
        json.loads((state / "feeds.json").read_text()) if (state / "feeds.json").exists() else {}
    )
    answers: dict[str, list[Any]] = record.get("answers", {})
    problems = []
    link = subprocess.run(["ip", "-br", "link", "show", plan["host_link"]], capture_output=True,
                          text=True, check=False)  # fmt: skip
    if link.returncode != 0:
        problems.append(f"the host link {plan['host_link']} is gone: the lab is cut off from here")
    for prefix in record["routes"]:
        routes = subprocess.run(["ip", "route", "show", prefix], capture_output=True, text=True)
        if plan["host_link"] not in routes.stdout:
            problems.append(f"no route to {prefix} through {plan['host_link']}")
    rows = []
    for name, info in record["nodes"].items():
        running = sim_node.pid(state, name) is not None
        with socket.socket() as s:
            s.settimeout(0.5)
            ssh = s.connect_ex((info["ssh"], 22)) == 0
        power_file = state / "bmcs" / name / "power"
        power = power_file.read_text().strip() if power_file.exists() else "?"
        outlets = []
        fed = not feeds.get(name)
        for pdu, outlet in feeds.get(name, []):
            path = state / "pdus" / pdu / "outlets.json"
            on = json.loads(path.read_text()).get(str(outlet), True) if path.exists() else True
            fed = fed or on
            outlets.append(f"{pdu}/{outlet} {'on' if on else 'off'}")
        bmc: bool | None = None
        if (where := answers.get(f"bmc:{name}")) is not None:
            if len(where) > 2:  # a Redfish BMC: [address, port, scheme]
                bmc = sim_redfish.answers(where[0], where[1], where[2])
                asked = f"Redfish at {where[2]}://{where[0]}:{where[1]}"
            else:
                bmc = _bmc_answers(where[0], where[1])
                asked = f"RMCP at {where[0]}:{where[1]}"
            if not bmc and fed:  # a BMC with its outlets cut is dark, as it should be
                problems.append(f"{name}'s BMC does not answer {asked}")
        if power == "on" and not running:
            problems.append(f"{name} is powered on but its node is not running")
        elif running and not ssh:
            problems.append(f"{name} runs but its sshd does not answer on {info['ssh']}:22")
        rows.append(NodeStatus(name, running, ssh, power, ", ".join(outlets) or "-", bmc))
    for key, where in answers.items():
        if key.startswith("pdu:") and not _snmp_answers(where[0], where[1]):
            problems.append(f"PDU {key[4:]}'s SNMP agent does not answer at {where[0]}:{where[1]}")
    return LabStatus(rows, problems)
