"""A simulated PDU: net-snmp's snmpd answering v2c and v3 (authPriv), outlets by pass_persist.

Used by the simulated lab (one per PDU) and by the PDU driver's tests. snmpd
runs in the foreground with only our config (``-C -c``) and its own persistent
directory, so it never reads or writes the host's /etc/snmp or /var/lib/snmp.
What the unit answers (sysDescr, sysObjectID, its vendor subtree) comes from a
device record written from the vendor's MIB (``pdu_record.py``), never from
labctl's PDU profiles: those are what the simulated PDU is there to check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from labctl.errors import LabctlError
from labctl.programs import require
from labctl.sim.pdu_record import DeviceRecord, load
from labctl.sim.process import ManagedProcess

SNMPD = "/usr/sbin/snmpd"


@dataclass(frozen=True)
class PduSpec:
    name: str
    address: str
    state_dir: Path
    record: Path  # the device record (tests/peers/pdu/*.yaml) this unit answers from
    outlet_count: int
    port: int = 161
    community: str = field(default="", repr=False)
    username: str = ""
    auth_key: str = field(default="", repr=False)
    priv_key: str = field(default="", repr=False)
    hooks: Mapping[int, Mapping[str, Sequence[str]]] = field(default_factory=dict)
    reboot_delay: float = 2.0


def render_snmpd_conf(spec: PduSpec, record: DeviceRecord) -> str:
    """snmpd.conf for one PDU (holds credentials: write it 0600)."""
    handler = f"{sys.executable} -m labctl.sim.pdu_outlets {spec.state_dir}"
    lines = [
        f"agentAddress udp:{spec.address}:{spec.port}",
        f"sysName {spec.name}",
        f"sysDescr {record.sys_descr}",
        f"sysObjectID .{record.sys_object_id}",
    ]
    if spec.community:
        lines.append(f"rwcommunity {spec.community} default")
    if spec.username:
        lines.append(f'createUser {spec.username} SHA "{spec.auth_key}" AES "{spec.priv_key}"')
        lines.append(f"rwuser {spec.username} priv")
    lines.append(f"pass_persist .{record.enterprise} {handler}")
    return "\n".join(lines) + "\n"


@dataclass
class PduHandle(ManagedProcess):
    spec: PduSpec | None = None


def prepare(spec: PduSpec) -> Path:
    for value in (spec.community, spec.username, spec.auth_key, spec.priv_key):
        if '"' in value or "\n" in value:
            raise LabctlError(f"simulated PDU {spec.name}: credentials may not hold quotes")
    if spec.username and (len(spec.auth_key) < 8 or len(spec.priv_key) < 8):
        raise LabctlError("SNMPv3 pass phrases must be at least 8 characters (RFC 3414)")
    spec.state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(spec.state_dir, 0o700)
    (spec.state_dir / "persist").mkdir(exist_ok=True)
    record = load(spec.record)
    for obj in record.objects:
        if obj.status_string and spec.outlet_count > obj.status_string.positions:
            raise LabctlError(
                f"simulated PDU {spec.name}: {record.vendor} {record.model}'s {obj.name} holds "
                f"{obj.status_string.positions} outlets, not {spec.outlet_count}"
            )
    config = {
        "outlet_count": spec.outlet_count,
        "record": str(spec.record),
        "hooks": {str(n): {k: list(v) for k, v in h.items()} for n, h in spec.hooks.items()},
        "reboot_delay": spec.reboot_delay,
    }
    (spec.state_dir / "pdu.json").write_text(json.dumps(config))
    conf = spec.state_dir / "snmpd.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(render_snmpd_conf(spec, record))
    return conf


def start(spec: PduSpec, netns: str | None = None, wait: float = 10.0) -> PduHandle:
    require(SNMPD, "it simulates the PDUs")
    require("snmpget", "it checks the simulated PDUs answer")
    conf = prepare(spec)
    argv = [SNMPD, "-f", "-Lf", str(spec.state_dir / "snmpd.log"), "-C", "-c", str(conf)]
    argv += ["-p", str(spec.state_dir / "snmpd.pid")]  # the address is in the config
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    env = {
        **os.environ,
        "SNMP_PERSISTENT_DIR": str(spec.state_dir / "persist"),
        "MIBS": "",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    # How to start this agent again (`sim up` does when it finds it dead).
    launch = spec.state_dir / "argv.json"
    launch.write_text(json.dumps({"argv": argv, "env": env}))
    launch.chmod(0o600)
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    handle = PduHandle(process.pid, process, spec)
    if netns is None:
        _wait_ready(handle, spec, wait)
    return handle


def _wait_ready(handle: PduHandle, spec: PduSpec, wait: float) -> None:
    oid = load(spec.record).first_readable().instance(1)
    if spec.username:
        auth = ["-v3", "-l", "authPriv", "-u", spec.username, "-a", "SHA", "-A", spec.auth_key]
        auth += ["-x", "AES", "-X", spec.priv_key]
    else:
        auth = ["-v2c", "-c", spec.community]
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if handle.process is not None and handle.process.poll() is not None:
            log = spec.state_dir / "snmpd.log"
            tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
            raise LabctlError(f"snmpd for {spec.name} exited: {tail}")
        probe = subprocess.run(
            ["snmpget", *auth, "-t", "0.3", "-r", "0", "-On", f"{spec.address}:{spec.port}", oid],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "MIBS": ""},
        )
        if probe.returncode == 0 and "No Such" not in probe.stdout:
            return
        time.sleep(0.1)
    handle.stop()
    raise LabctlError(f"snmpd for {spec.name} did not answer on {spec.address}:{spec.port}")
