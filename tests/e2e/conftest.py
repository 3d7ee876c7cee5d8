"""The simulated reference lab as a fixture: up before a test, down (and checked gone) after.

Needs root (CI runs as root). The lab's public addresses live only in namespaces
this fixture makes; `down` must leave no namespace, route, link, mount or process.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import REFERENCE
from tests.labctl_process import run_labctl

SECRETS = {
    "LABCTL_BMC_PASSWORD": "generated-bmc-e2e",  # benchmarks/gen_inventory.py's labs
    "LABCTL_BMC_PASSWORD_FOHN": "fohn-bmc-e2e",
    "LABCTL_BMC_PASSWORD_CHEQUITA": "chequita-bmc-e2e",
    "LABCTL_BMC_PASSWORD_WIND": "wind-bmc-e2e",
    "LABCTL_PDU_AUTH_KEY": "pdu-auth-e2e",
    "LABCTL_PDU_PRIV_KEY": "pdu-priv-e2e",
    "LABCTL_SWITCH_SNMP_AUTH_KEY": "astrid-auth-e2e",
    "LABCTL_SWITCH_SNMP_PRIV_KEY": "astrid-priv-e2e",
}
NODES = {"fohn": "31.31.164.220", "chequita": "31.31.164.221", "wind": "31.31.164.222"}
DIGIPOWER_STATUS = "1.3.6.1.4.1.17420.1.2.9.1.13.0"


def run(*argv: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


def host_state() -> tuple[set[str], set[str], set[str], set[str]]:
    """What a simulated lab adds to the host: its namespaces (``lab-*``), its routes
    (through the transit link, and the blackholes behind them), its mounts and its
    containers' cgroups (containerd's ``k8s.io/ID`` and podman's
    ``libpod_parent/libpod-ID`` in the host's tree).

    Only those: other tests on the same machine (another clone's integration tests)
    may make namespaces of their own meanwhile, which are not this lab's to answer for.
    """
    netns = {n for n in run("ip", "netns", "list").stdout.split() if n.startswith("lab-")}
    routes = {
        line
        for line in run("ip", "route").stdout.splitlines()
        if "169.254.77." in line or line.startswith("blackhole")
    }
    mounts = {
        line
        for line in Path("/proc/mounts").read_text().splitlines()
        if "/lab-" in line or "labctl" in line
    }
    cgroups = {str(p) for p in Path("/sys/fs/cgroup").glob("*/k8s.io/*") if p.is_dir()}
    # The nodes' podman containers (cgroupfs: libpod_parent/libpod-ID).
    cgroups |= {str(p) for p in Path("/sys/fs/cgroup").glob("*/libpod_parent/libpod-*")}
    return netns, routes, mounts, cgroups


class Lab:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.state = workdir / ".labctl" / "sim"

    def labctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_labctl(*args, cwd=self.workdir, env=SECRETS)

    def env(self) -> dict[str, str]:
        """What `labctl sim env` exports, plus the lab's secrets and a CA passphrase."""
        exports = self.labctl("sim", "env").stdout
        pairs = dict(line.removeprefix("export ").split("=", 1) for line in exports.splitlines())
        env = {k: v.strip("'") for k, v in pairs.items()}
        return {**SECRETS, **env, "LABCTL_CA_PASSPHRASE": "e2e-ca-passphrase"}

    def ssh(self, address: str, command: str) -> subprocess.CompletedProcess[str]:
        return run(
            "ssh", "-i", str(self.state / "id_ed25519"), "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={self.state / 'known_hosts'}", "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=2", f"root@{address}", command, timeout=10,
        )  # fmt: skip


# One simulated reference lab per machine at a time: two test runs (two clones,
# two worktrees) would fight over the same namespaces and routes, and each one's
# "left nothing behind" check would see the other's lab. The second one waits.
HOST_LOCK = Path("/run/labctl/e2e-lab.lock")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with simulated_lab(tmp_path, REFERENCE.read_text()) as the_lab:
        yield the_lab


@contextmanager
def simulated_lab(tmp_path: Path, inventory: str) -> Iterator[Lab]:
    """``inventory``'s lab up in ``tmp_path``, down (and checked gone) after."""
    assert os.geteuid() == 0, "the simulated lab needs root (CI runs as root)"
    HOST_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with HOST_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield from _lab(tmp_path, inventory)


def _lab(tmp_path: Path, inventory: str) -> Iterator[Lab]:
    (tmp_path / "inventory.yaml").write_text(inventory)
    the_lab = Lab(tmp_path)
    before = host_state()
    try:
        up = the_lab.labctl("sim", "up")
        assert up.returncode == 0, up.stdout + up.stderr
        yield the_lab
    finally:
        down = the_lab.labctl("sim", "down")
        assert down.returncode == 0, down.stdout + down.stderr
        time.sleep(0.5)  # orphaned daemons may wait a moment to be reaped
        after = host_state()
        assert after == before, "the simulated lab left something behind"
        leftovers = [
            line
            for line in run("ps", "-eo", "stat,args").stdout.splitlines()
            if str(tmp_path) in line and not line.startswith("Z")
        ]
        assert leftovers == []
