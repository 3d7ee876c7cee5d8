"""Shared test helpers."""

from __future__ import annotations

import compileall
import os
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.sim import platform as standins
from tests.labctl_process import RUNS

# What `labctl sim env` exports. A shell that has sourced it (the demo's
# .labctl/demo.env does) would hand every test that lab's SSH settings and stand-ins,
# and a test that runs labctl without one (a real lab's view) would not get it: each
# test says its own lab's.
SIM_ENV = (*standins.NAMES, "LABCTL_SSH_USER", "LABCTL_SSH_KNOWN_HOSTS",
           "LABCTL_SSH_IDENTITY")  # fmt: skip
for _name in SIM_ENV:
    os.environ.pop(_name, None)

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "inventory.yaml"
FIXTURES = ROOT / "tests" / "fixtures"
GOLDEN = FIXTURES / "golden"


def assert_golden(name: str, text: str) -> None:
    """``text`` is what ``tests/fixtures/golden/NAME`` holds.

    ``LABCTL_UPDATE_GOLDEN=1`` rewrites the file instead: review its diff like code.
    """
    golden = GOLDEN / name
    if os.environ.get("LABCTL_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), f"{name} changed; LABCTL_UPDATE_GOLDEN=1 rewrites it"


@pytest.fixture
def reference_text() -> str:
    return REFERENCE.read_text()


# labctl byte-compiled once, before any test runs it. The suite starts thousands of
# labctl processes (every `python -m labctl` of the integration and end-to-end tests,
# the simulated lab's BMC, PDU and boot daemons), and with PYTHONDONTWRITEBYTECODE=1 (this
# project's machines have it, CI's among them) none of them writes what it compiled, so
# each compiled every module it imports from source again: 0.2-1 s a process on 2 cores
# (benchmarks/bench_suite_startup.py). Python still reads an up-to-date .pyc, and checks
# it against its source's mtime, so an edit after this is compiled again, as before.
# The .pyc files go where Python looks (__pycache__, or PYTHONPYCACHEPREFIX), as pip's
# install of labctl would put them; git ignores them.
_COMPILED: list[float] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controlling process compiled before starting it
    started = time.monotonic()
    compileall.compile_dir(ROOT / "labctl", quiet=1)
    _COMPILED.append(time.monotonic() - started)


# Where the suite's time went, per file: `./scripts/test` prints pytest's slowest
# phases (--durations) and, from here, the ten slowest files with every phase of every
# test in them summed (set-up and teardown too, so a lab fixture's up and down count
# against the file that asked for it). docs/performance.md keeps the figures.
_FILE_SECONDS: dict[str, float] = {}
_FILE_TESTS: dict[str, set[str]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = report.nodeid.split("::", 1)[0]
    _FILE_SECONDS[path] = _FILE_SECONDS.get(path, 0.0) + report.duration
    _FILE_TESTS.setdefault(path, set()).add(report.nodeid)


def _by_folder(seconds: dict[str, float]) -> dict[str, tuple[float, int]]:
    """Each test file's folder (``tests/e2e``), slowest first, with its seconds and files."""
    folders: dict[str, tuple[float, int]] = {}
    for path, spent in seconds.items():
        folder = path.rsplit("/", 1)[0] if "/" in path else "."
        total, files = folders.get(folder, (0.0, 0))
        folders[folder] = (total + spent, files + 1)
    return dict(sorted(folders.items(), key=lambda item: item[1][0], reverse=True))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _FILE_SECONDS:
        return
    total = sum(_FILE_SECONDS.values())
    terminalreporter.write_sep("=", "slowest 10 files (set-up, call and teardown summed)")
    slowest = sorted(_FILE_SECONDS.items(), key=lambda item: item[1], reverse=True)[:10]
    for path, seconds in slowest:
        count = len(_FILE_TESTS[path])
        terminalreporter.write_line(f"{seconds:8.1f} s  {count:4d} tests  {path}")
    terminalreporter.write_line(f"{total:8.1f} s  in all, over {len(_FILE_SECONDS)} files")
    # The ten files are the labs; the rest (unit, integration, tools and the small lab
    # files) is a third of the run and shows only here, folder by folder.
    for folder, (seconds, files) in _by_folder(_FILE_SECONDS).items():
        terminalreporter.write_line(f"{seconds:8.1f} s  {files:4d} files  {folder}/")
    if RUNS:  # this process's (under xdist each worker keeps its own count)
        terminalreporter.write_line(
            f"{sum(RUNS):8.1f} s  in {len(RUNS)} labctl processes the tests ran"
            " (tests/labctl_process.py)"
        )
    for seconds in _COMPILED:
        terminalreporter.write_line(f"{seconds:8.1f} s  labctl byte-compiled, before the tests")
    setup = os.environ.get("LABCTL_SETUP_SECONDS")
    if setup:
        terminalreporter.write_line(f"{float(setup):8.1f} s  scripts/setup.sh, before pytest")


# Two processes run the suite (scripts/test: pytest-xdist's `-n 2`), each in collection
# order, one after another as a one-process run would: one runs every test that brings
# up a simulated lab or collides with one, the other everything else (unit, most
# integration, tools), meanwhile. Two labs would share namespace names and routes, and a
# lab's teardown checks the host is as it found it; a test collides with a lab when it
# takes the machine's lab lock, makes what that check counts as the lab's
# (tests/e2e/conftest.py's host_state: namespaces named lab-*, routes through the transit
# link, mounts, containers' cgroups), or boots a VM under emulation beside the lab's
# bounded waits. Each such file below says why. The rest stays in ONE process too: the
# integration and tools tests collide with one another when run at once (loopback
# addresses and ports such as a PDU stand-in's 127.31.0.6:161 or a free port two etcds
# pick alike, the source tree's build/ that a wheel build writes). Without -n, nothing
# changes.
LAB_DIRS = ("tests/e2e/", "tests/faults/")
WITH_THE_LABS = {
    "tests/integration/test_boot_service.py": "takes the lab lock (tests/peers/bootnet.py): "
    "its boot network holds the lab's boot address",
    "tests/integration/test_sim_engine_podman.py": "runs podman containers, whose cgroups a "
    "lab's teardown checks it left none of",
    "tests/integration/test_coreos_installer.py": "a loop device with partitions and udevd, "
    "beside the lab's disks",
    "tests/integration/test_osimage_boot.py": "boots a VM under emulation (a whole core)",
}
LAB_SCOPE, REST_SCOPE = "simulated labs", "no lab"


def with_the_labs(nodeid: str) -> bool:
    """Whether the test ``nodeid`` runs in the labs' process (the paragraph above)."""
    path = nodeid.split("::", 1)[0]
    return path.startswith(LAB_DIRS) or path in WITH_THE_LABS


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist's scheduler by scope, with two scopes: the tests `with_the_labs`, and
    the rest. Each scope goes whole to one worker, in collection order, and both start at
    once; nodeids stay as they are, so failures and the summary below read as in a
    one-process run."""
    from xdist.scheduler import LoadScopeScheduling

    class LabsApart(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return LAB_SCOPE if with_the_labs(nodeid) else REST_SCOPE

    return LabsApart(config, log)


# Whether a test failed, for fixtures that must know at teardown (the shared lab is
# taken down after a failed test rather than handed on: tests/e2e/conftest.py).
FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


SHARED_LAB_FIXTURES = {"shared_lab", "new_shared_lab"}


def pytest_runtest_setup(item: pytest.Item) -> None:
    """The shared lab holds the machine's lab lock (tests/e2e/conftest.py's HOST_LOCK)
    while it is up: a test that does not use it takes it down first, so one that takes
    the lock itself (the boot service's peers in tests/integration) never waits on a lab
    the session would keep until its end."""
    e2e = sys.modules.get("tests.e2e.conftest")
    if e2e is not None and not SHARED_LAB_FIXTURES & set(getattr(item, "fixturenames", ())):
        e2e.release_shared_lab()


@pytest.fixture(scope="session")
def shared_labs() -> Iterator[None]:
    """The session's end for the shared simulated lab (tests/e2e/conftest.py): here, in
    the one conftest both tests/e2e and tests/faults see, so they share one lab."""
    yield
    from tests.e2e.conftest import release_shared_lab

    release_shared_lab()
