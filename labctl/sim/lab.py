"""The simulated lab's lifecycle: up, status, down.

Everything created is recorded in ``STATE/sim.json`` as it is created, so
``down`` removes exactly that (namespaces, the host link, routes, daemons) even
after a half-finished ``up``. Needs root: namespaces, veths and mounts.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.errors import LabctlError
from labctl.inventory.model import Inventory
from labctl.programs import require
from labctl.secrets import resolve
from labctl.sim import bmc as sim_bmc
from labctl.sim import netns_dir, pdu_agent
from labctl.sim import node as sim_node
from labctl.sim.node import NODE_MOUNT
from labctl.sim.plan import TRANSIT, SimPlan, build_plan
from labctl.sim.process import ManagedProcess, stop_all
from labctl.sim.record import STATE_FILE, read_record

SYSTEMCTL_SOURCE = Path(__file__).with_name("systemctl.py")


def _ip(*args: str) -> None:
    ip = require("ip", "the simulated lab builds its network with it")
    done = subprocess.run([ip, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LabctlError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


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
    _ip(
        "link",
        "add",
        plan.host_link,
        "type",
        "veth",
        "peer",
        "name",
        f"lf{plan.lab_id}",
        "netns",
        f,
    )
    _ip("addr", "add", plan.host_address, "dev", plan.host_link)
    _ip("link", "set", plan.host_link, "up")
    _ip("-n", f, "addr", "add", plan.fabric_address, "dev", f"lf{plan.lab_id}")
    _ip("-n", f, "link", "set", f"lf{plan.lab_id}", "up")
    for prefix in plan.prefixes:
        _ip("route", "add", prefix, "via", str(TRANSIT[2]), "dev", plan.host_link, "metric", "100")
        # If the link ever goes, lab addresses are dropped here instead of leaving the machine.
        _ip("route", "add", "blackhole", prefix, "metric", "4000")
        record.add("routes", prefix)
    for node in plan.nodes:
        _ip("netns", "add", node.netns)
        record.add("netns", node.netns)
        _ip("-n", node.netns, "link", "set", "lo", "up")
        for nic in node.nics:
            _ip(
                "link",
                "add",
                nic.peer,
                "netns",
                f,
                "type",
                "veth",
                "peer",
                "name",
                nic.name,
                "netns",
                node.netns,
            )
            _ip("-n", node.netns, "link", "set", nic.name, "address", nic.mac)
            for address in nic.addresses:
                _ip("-n", node.netns, "addr", "add", address, "dev", nic.name)
            _ip("-n", node.netns, "link", "set", nic.name, "up")
            _ip("-n", f, "link", "set", nic.peer, "master", nic.bridge, "up")
        if node.gateway:
            _ip("-n", node.netns, "route", "add", "default", "via", node.gateway)


def _nodes(plan: SimPlan, state: Path, login_user: str) -> None:
    operator = state / "id_ed25519"
    _keygen(operator, "labctl-sim-operator")
    known = []
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    for node in plan.nodes:
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
        key = (d / "ssh_host_ed25519_key.pub").read_text().split()
        known.append(f"{','.join((node.name, *node.listen))} {key[0]} {key[1]}")
    (state / "known_hosts").write_text("\n".join(known) + "\n")


def _hooks(state: Path, name: str) -> dict[str, tuple[str, ...]]:
    base = (sys.executable, "-m", "labctl.sim.node")
    return {verb: (*base, verb, name, str(state)) for verb in ("start", "stop")}


def _devices(
    inventory: Inventory, plan: SimPlan, state: Path, base_dir: Path, record: Record
) -> None:
    for server in inventory.servers:
        password = resolve(
            server.bmc.password, used_at=f"{server.name} BMC password", base_dir=base_dir
        )
        power_hooks = _hooks(state, server.name)
        spec = sim_bmc.BmcSpec(
            name=server.name,
            address=server.bmc.address,
            port=server.bmc.port,
            username=server.bmc.username,
            password=password,
            state_dir=state / "bmcs" / server.name,
            power_on=power_hooks["start"],
            power_off=power_hooks["stop"],
            status_pidfile=sim_node.node_dir(state, server.name) / "pid",
            initially_on=True,
        )
        handle = sim_bmc.start(spec, netns=plan.fabric)
        record.pid(f"bmc:{server.name}", handle.pid)
        sim_bmc._wait_listening(handle, spec, 10.0)
    feeds: dict[str, list[tuple[str, int]]] = {}
    for pdu in inventory.pdus:
        for outlet in pdu.outlets:
            feeds.setdefault(outlet.device, []).append((pdu.name, outlet.outlet))
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
        hooks: dict[int, dict[str, tuple[str, ...]]] = {}
        for outlet in pdu.outlets:
            if outlet.device in {s.name for s in inventory.servers}:
                feed = (sys.executable, "-m", "labctl.sim.feeds", outlet.device, str(state))
                hooks[outlet.outlet] = {"on": feed, "off": feed}
        spec_pdu = pdu_agent.PduSpec(
            name=pdu.name,
            address=pdu.address,
            port=snmp.port,
            state_dir=state / "pdus" / pdu.name,
            profile=pdu.profile,
            outlet_count=pdu.outlet_count,
            overrides=pdu.custom_profile,
            hooks=hooks,
            community=community,
            username=username,
            auth_key=auth_key,
            priv_key=priv_key,
        )
        handle_pdu = pdu_agent.start(spec_pdu, netns=plan.fabric)
        record.pid(f"pdu:{pdu.name}", handle_pdu.pid)
        pdu_agent._wait_ready(handle_pdu, spec_pdu, 10.0)
    (state / "feeds.json").write_text(json.dumps(feeds))


def up(
    inventory: Inventory,
    inventory_path: Path,
    state: Path,
    progress: Callable[[str], None] = lambda _: None,
) -> str:
    """Bring the lab up; ``progress`` hears each phase as it starts."""
    require_root()
    plan = build_plan(inventory)
    if (state / STATE_FILE).exists():
        missing = [n for n in plan.nodes if not sim_node.pid(state, n.name)]
        if not missing:
            return f"the simulated lab {plan.lab_id} is already up; nothing changed"
        for n in missing:
            sim_node.start(state, n.name)
        return f"restarted {', '.join(n.name for n in missing)}"
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
    record.save()
    try:
        progress(f"networks: {len(plan.bridges)} bridges, {len(plan.nodes)} node namespaces")
        _network(plan, record)
        progress(f"nodes: host keys, overlays and sshd for {len(plan.nodes)}")
        _nodes(plan, state, login_user)
        for n in plan.nodes:
            record.pid(f"node:{n.name}", sim_node.start(state, n.name))
        progress(f"devices: {len(inventory.servers)} BMCs, {len(inventory.pdus)} PDUs")
        _devices(inventory, plan, state, inventory_path.parent, record)
        progress("waiting for every node's sshd")
        for n in plan.nodes:
            if not sim_node.wait_ssh(n.ssh_address):
                raise LabctlError(f"{n.name}: sshd did not answer on {n.ssh_address}:22")
    except BaseException:
        down(state)
        raise
    return f"the simulated lab {plan.lab_id} is up: {len(plan.nodes)} nodes"


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
    for daemon in (state / "bmcs").glob("*/daemon.pid"):  # BMCs restarted by a PDU since up
        processes.append(ManagedProcess(int(daemon.read_text())))
    stop_all(processes)
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
    subprocess.run(
        ["ip", "link", "del", record.data["plan"]["host_link"]], capture_output=True, check=False
    )
    shutil.rmtree(state)
    return "the simulated lab is down; everything it made is gone"


def status(state: Path) -> list[NodeStatus]:
    record = read_record(state)
    feeds: dict[str, list[list[Any]]] = (
        json.loads((state / "feeds.json").read_text()) if (state / "feeds.json").exists() else {}
    )
    rows = []
    for name, info in record["nodes"].items():
        with socket.socket() as s:
            s.settimeout(0.5)
            ssh = s.connect_ex((info["ssh"], 22)) == 0
        power_file = state / "bmcs" / name / "power"
        power = power_file.read_text().strip() if power_file.exists() else "?"
        outlets = []
        for pdu, outlet in feeds.get(name, []):
            path = state / "pdus" / pdu / "outlets.json"
            on = json.loads(path.read_text()).get(str(outlet), True) if path.exists() else True
            outlets.append(f"{pdu}/{outlet} {'on' if on else 'off'}")
        rows.append(
            NodeStatus(
                name, sim_node.pid(state, name) is not None, ssh, power, ", ".join(outlets) or "-"
            )
        )
    return rows
