"""A switch's SNMP agent for BGP4-MIB: net-snmp's snmpd as AgentX master, FRR's bgpd attached.

FRR serves BGP4-MIB only as an AgentX subagent (Debian's frr-snmp: bgpd
``-M snmp`` and ``agentx`` in frr.conf); snmpd answers the SNMP requests and
forwards 1.3.6.1.2.1.15 to it. Three things keep the two apart unless set,
and are why this module exists rather than a stock snmpd.conf:

* the subagent looks for the master at net-snmp's default ``/var/agentx/master``
  unless its own SNMP configuration (``frr.conf`` in ``SNMPCONFPATH``: net-snmp
  names an application's file after it, and FRR's subagent is called "frr") says
  ``agentXSocket``; bgpd logs "Failed to connect to the agentx master agent
  ([NIL])" otherwise;
* bgpd has dropped to the user frr when it connects, and snmpd makes its socket
  root's, 0755, unless ``agentXPerms`` gives it to frr: bgpd then logs the same
  failure with the socket's path;
* Debian's stock snmpd.conf lets the community see only the ``systemonly`` view;
* a subagent that found no master gives up for good unless ``agentxPingInterval``
  tells it to try again, so snmpd would have to be up before bgpd, always.

Used by the BGP4-MIB driver's test. snmpd runs in the foreground with only our
configuration (``-C -c``) and its own persistent directory.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from labctl.errors import LabctlError
from labctl.programs import require
from labctl.sim.process import ManagedProcess

SNMPD = "/usr/sbin/snmpd"
SUBAGENT_APP = "frr"  # FRR's init_agent() name: its SNMP settings are in frr.conf
PING_INTERVAL = 2  # s between the subagent's attempts to reach a missing master


@dataclass(frozen=True)
class AgentSpec:
    name: str
    address: str
    port: int
    state_dir: Path  # snmpd's config, log, pid and persistent files (0700)
    socket: Path  # the AgentX socket; its directory must let the user frr in
    community: str = field(default="", repr=False)
    username: str = ""
    auth_key: str = field(default="", repr=False)
    priv_key: str = field(default="", repr=False)
    socket_owner: str = "frr"


def render_snmpd_conf(spec: AgentSpec) -> str:
    """snmpd.conf: AgentX master on ``spec.socket``, read-only access (holds credentials)."""
    owner = spec.socket_owner
    lines = [
        f"agentAddress udp:{spec.address}:{spec.port}",
        "master agentx",
        f"agentXSocket {spec.socket}",
        f"agentXPerms 0660 0755 {owner} {owner}",
        f"sysName {spec.name}",
        "sysDescr labctl simulated switch (FRR bgpd over AgentX)",
    ]
    if spec.community:
        lines.append(f"rocommunity {spec.community} default")
    if spec.username:
        lines.append(f'createUser {spec.username} SHA "{spec.auth_key}" AES "{spec.priv_key}"')
        lines.append(f"rouser {spec.username} priv")
    return "\n".join(lines) + "\n"


def render_subagent_conf(socket: Path, ping: int = PING_INTERVAL) -> str:
    """FRR's own SNMP settings (``frr.conf`` in the directory ``SNMPCONFPATH`` names).

    The ping makes the subagent find a master that started after it, or came back.
    """
    return f"agentXSocket {socket}\nagentxPingInterval {ping}\n"


def subagent_env(conf_dir: Path) -> dict[str, str]:
    """What bgpd's environment needs so its subagent finds ``render_subagent_conf``'s file."""
    return {"SNMPCONFPATH": str(conf_dir)}


def write_subagent_conf(conf_dir: Path, socket: Path, owner: str = "frr") -> None:
    conf_dir.mkdir(parents=True, exist_ok=True)
    conf_dir.chmod(0o755)
    path = conf_dir / f"{SUBAGENT_APP}.conf"
    path.write_text(render_subagent_conf(socket))
    path.chmod(0o644)


def start(spec: AgentSpec, netns: str | None = None, wait: float = 10.0) -> ManagedProcess:
    """snmpd for ``spec``, answering before this returns (bgpd may attach later)."""
    require(SNMPD, "it serves the switches' BGP4-MIB")
    for value in (spec.community, spec.username, spec.auth_key, spec.priv_key):
        if '"' in value or "\n" in value:
            raise LabctlError(f"SNMP agent of {spec.name}: credentials may not hold quotes")
    spec.state_dir.mkdir(parents=True, exist_ok=True)
    spec.state_dir.chmod(0o700)
    (spec.state_dir / "persist").mkdir(exist_ok=True)
    conf = spec.state_dir / "snmpd.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(render_snmpd_conf(spec))
    log = spec.state_dir / "snmpd.log"
    argv = [SNMPD, "-f", "-Lf", str(log), "-C", "-c", str(conf)]
    argv += ["-p", str(spec.state_dir / "snmpd.pid")]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(spec.state_dir / "persist"), "MIBS": ""}
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    handle = ManagedProcess(process.pid, process)
    if netns is None:
        _wait_ready(handle, spec, log, wait)
    return handle


def _wait_ready(handle: ManagedProcess, spec: AgentSpec, log: Path, wait: float) -> None:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not handle.running():
            tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
            raise LabctlError(f"snmpd for {spec.name} exited: {tail}")
        if spec.socket.exists():
            return
        time.sleep(0.05)
    handle.stop()
    raise LabctlError(f"snmpd for {spec.name} made no AgentX socket at {spec.socket}")
