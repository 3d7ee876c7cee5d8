"""Shared test helpers."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.sim import platform as standins

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
    setup = os.environ.get("LABCTL_SETUP_SECONDS")
    if setup:
        terminalreporter.write_line(f"{float(setup):8.1f} s  scripts/setup.sh, before pytest")


# Whether a test failed, for fixtures that must know at teardown (the shared lab is
# taken down after a failed test rather than handed on: tests/e2e/conftest.py).
FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
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
