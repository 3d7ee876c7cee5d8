"""The simulated labs as fixtures: a lab of the test's own, or one shared by many tests.

Needs root (CI runs as root). The lab's public addresses live only in namespaces
these fixtures make; `down` must leave no namespace, route, link, mount or process,
and every lab's teardown checks that it did (``_lab``).

Two kinds, because a lab costs its `sim up` and `down` and, above all, the bootstraps
a test needs before it can prove anything:

* ``lab`` (and ``simulated_lab(tmp_path, inventory)`` for another inventory): a lab
  of the test's own, up before it and down after. For tests that destroy the lab,
  build it again, or need a layer never run on it.
* ``shared_lab``: the reference lab, up once for every test that asks for it, in one
  working directory (the CA, the journal and what earlier tests bootstrapped stay).
  ``new_shared_lab`` is the same lab but one no test has had yet (a new one if it was
  used): for a test proving a layer's first run, ahead of the tests that then share.
  A test that destroys the lab (a foreign data directory, a restore) ends with
  ``release_shared_lab()``, which takes it down: the next test gets a new one.
  A module joins by overriding ``lab`` with it (tests/e2e/test_sim_lab.py, and
  tests/faults/conftest.py for the whole directory)::

      @pytest.fixture
      def lab(shared_lab: Lab) -> Lab:
          return shared_lab

  A test on it bootstraps the layers it needs itself (a converged re-run is cheap)
  and puts back what it changed beyond that: a unit it enabled, a key it replaced, a
  file system it mounted. After each test the fixture checks the lab is whole (every
  node powered, running and answering SSH, every BMC and PDU answering, the inventory
  file as it was) and repairs it with `labctl sim up` / `power on`; a test that failed,
  or a lab that cannot be repaired, gets the lab taken down (and checked gone), and the
  next test gets a new one. A test that wants a private lab takes the shared one down
  first (``release_shared_lab``): two labs of one inventory would share names.

Order: pytest runs files in the order collected (directories, then files, by name) and
tests in a file top to bottom, so the shared lab's users run together (test_sim_lab.py,
last of tests/e2e, then tests/faults) and it comes up once per session; run in
another order they still pass (``new_shared_lab`` and a failed test's teardown recycle
it), only slower. test_etcd_lab.py: its first test takes ``new_shared_lab``, its second
``shared_lab`` and releases it; the private labs of the files between take it down.
test_kubernetes_lab.py's last test takes ``new_shared_lab`` and leaves a cluster that
test_monitoring_lab.py, next, goes on from and then releases.

``Lab.env()`` is what every labctl a test runs is given: `labctl sim env`'s exports,
asked once per lab record (sim.json) and process environment, not before every
command; a `sim up` that changes the record, or a test that sets a variable, asks again.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.conftest import FAILED, REFERENCE
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


def inotify_limits() -> tuple[str, str]:
    """The host's inotify limits, which ``sim up`` raises and ``down`` puts back."""
    proc = Path("/proc/sys/fs/inotify")
    return (
        (proc / "max_user_instances").read_text(),
        (proc / "max_user_watches").read_text(),
    )


class Lab:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.state = workdir / ".labctl" / "sim"
        self._exports: tuple[tuple[bytes, frozenset[tuple[str, str]]], dict[str, str]] | None
        self._exports = None

    def labctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_labctl(*args, cwd=self.workdir, env=SECRETS)

    def env(self) -> dict[str, str]:
        """What `labctl sim env` exports, plus the lab's secrets and a CA passphrase.

        Asked once per lab record: `sim env` answers from the record `sim up` wrote
        (sim.json) and this process's environment, so while both are as they were its
        answer is too. Every labctl a test runs takes this environment, and asking
        again each time cost a labctl process per command (0.3-1 s on 2 cores; 83 of
        them in the fault suite's 20-SIGKILL test alone). A `sim up` that changes the
        record (a mirror's image, a node remade), or a test that sets a variable, asks
        again."""
        key = ((self.state / "sim.json").read_bytes(), frozenset(os.environ.items()))
        if self._exports is None or self._exports[0] != key:
            exports = self.labctl("sim", "env").stdout
            lines = exports.splitlines()
            pairs = dict(line.removeprefix("export ").split("=", 1) for line in lines)
            self._exports = (key, {k: v.strip("'") for k, v in pairs.items()})
        return {**SECRETS, **self._exports[1], "LABCTL_CA_PASSPHRASE": "e2e-ca-passphrase"}

    def ssh(
        self, address: str, command: str, timeout: float = 10, connect_timeout: int = 2
    ) -> subprocess.CompletedProcess[str]:
        return run(
            "ssh", "-i", str(self.state / "id_ed25519"), "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={self.state / 'known_hosts'}", "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={connect_timeout}", f"root@{address}", command,
            timeout=timeout,
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
    release_shared_lab()
    assert os.geteuid() == 0, "the simulated lab needs root (CI runs as root)"
    HOST_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with HOST_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield from _lab(tmp_path, inventory)


def _lab(tmp_path: Path, inventory: str) -> Iterator[Lab]:
    (tmp_path / "inventory.yaml").write_text(inventory)
    the_lab = Lab(tmp_path)
    before = host_state()
    limits = inotify_limits()
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
        assert inotify_limits() == limits, "sim down did not put the inotify limits back"
        leftovers = [
            line
            for line in run("ps", "-eo", "stat,args").stdout.splitlines()
            if str(tmp_path) in line and not line.startswith("Z")
        ]
        assert leftovers == []


class _Shared:
    """The shared reference lab while it is up: its lab and what takes it down."""

    def __init__(self) -> None:
        self.lab: Lab | None = None
        self.inventory = ""
        self.used = False  # handed to a test since it came up
        self.stack = ExitStack()


_SHARED = _Shared()


def release_shared_lab() -> None:
    """Take the shared lab down (and check it gone), if it is up."""
    if _SHARED.lab is None:
        return
    _SHARED.lab, _SHARED.used = None, False
    stack, _SHARED.stack = _SHARED.stack, ExitStack()
    stack.close()


def _shared(tmp_path_factory: pytest.TempPathFactory, new: bool) -> Lab:
    if new and _SHARED.used:
        release_shared_lab()
    _SHARED.used = True
    if _SHARED.lab is None:
        workdir = tmp_path_factory.mktemp("shared-lab")
        _SHARED.inventory = REFERENCE.read_text()
        _SHARED.lab = _SHARED.stack.enter_context(simulated_lab(workdir, _SHARED.inventory))
    return _SHARED.lab


def lab_problems(the_lab: Lab) -> list[str]:
    """What keeps ``the_lab`` from being as `sim up` left it, as sentences (none: whole)."""
    problems = []
    inventory = the_lab.workdir / "inventory.yaml"
    if inventory.read_text() != _SHARED.inventory:
        problems.append("the inventory file was changed")
    status = the_lab.labctl("sim", "status", "-o", "json")
    report = json.loads(status.stdout) if status.stdout.startswith("{") else {}
    problems += report.get("problems", [status.stdout + status.stderr])
    for node in report.get("nodes", []):
        if node["bmc_power"] != "on" or not node["ssh"]:
            problems.append(f"{node['name']} is not powered on and answering SSH")
    return problems


def _repair(the_lab: Lab) -> list[str]:
    """Put the shared lab back as `sim up` left it; returns what is still wrong."""
    (the_lab.workdir / "inventory.yaml").write_text(_SHARED.inventory)
    the_lab.labctl("sim", "up")
    report = json.loads(the_lab.labctl("sim", "status", "-o", "json").stdout)
    off = [n["name"] for n in report["nodes"] if n["bmc_power"] != "on"]
    if off:
        the_lab.labctl("power", "on", *off)
    deadline = time.monotonic() + 30
    while (problems := lab_problems(the_lab)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return problems


@pytest.fixture
def shared_lab(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, shared_labs: None
) -> Iterator[Lab]:
    """The reference lab shared by every test that asks for it (this module's paragraph)."""
    yield from _hand_out(_shared(tmp_path_factory, new=False), request)


@pytest.fixture
def new_shared_lab(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, shared_labs: None
) -> Iterator[Lab]:
    """The shared lab as `sim up` made it, no test's before this one: a new one if the
    shared lab was used (tests/e2e/test_etcd_lab.py proves etcd's first bootstrap on it)."""
    yield from _hand_out(_shared(tmp_path_factory, new=True), request)


def _hand_out(the_lab: Lab, request: pytest.FixtureRequest) -> Iterator[Lab]:
    yield the_lab
    if _SHARED.lab is not the_lab:
        return  # the test took it down itself (release_shared_lab): it destroyed it
    if request.node.stash.get(FAILED, False):
        release_shared_lab()  # a failed test may have left anything: the next gets a new lab
        return
    if lab_problems(the_lab) and (left := _repair(the_lab)):
        release_shared_lab()
        raise AssertionError(f"the shared lab could not be repaired after the test: {left}")
