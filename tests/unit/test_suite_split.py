"""The suite in two processes, the simulated labs in one of them (issue 28 item 4).

scripts/test runs pytest-xdist's `-n 2`; tests/conftest.py's scheduler keeps every test
that brings up a lab, or collides with one, in one scope, so one worker runs them all,
one after another in collection order, while the other runs the rest, in order too. Here xdist's own
scheduler is driven with two stand-in workers (what it sends each), and the list of
colliding files is checked against what the integration tests do.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import cast

import pytest

from tests import conftest
from tests.conftest import ROOT, WITH_THE_LABS, with_the_labs

COLLECTION = [
    "tests/e2e/test_ceph_lab.py::test_osds",
    "tests/e2e/test_sim_lab.py::test_up",
    "tests/e2e/test_sim_lab.py::test_power[on]",
    "tests/faults/test_faults.py::test_bmc_gone",
    "tests/integration/test_boot_service.py::test_dhcp",
    "tests/integration/test_ipmi_driver.py::test_power",
    "tests/integration/test_osimage_boot.py::test_vm",
    "tests/tools/test_pre_commit.py::test_hook",
    *(f"tests/unit/test_cli.py::test_{n}" for n in range(12)),
]
LABS = [nodeid for nodeid in COLLECTION if with_the_labs(nodeid)]


class Worker:
    """What xdist's scheduler talks to: it is sent test indices, and told to shut down."""

    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.sent: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent += indices

    def shutdown(self) -> None:
        self.shutting_down = True


def test_the_labs_run_in_one_worker_in_collection_order() -> None:
    config = SimpleNamespace(getvalue={"tx": ["2*popen"]}.__getitem__,
                             option=SimpleNamespace(loadscopereorder=True))  # fmt: skip
    # A stand-in with only what the scheduler reads of pytest's Config.
    scheduler = conftest.pytest_xdist_make_scheduler(cast(pytest.Config, config), None)
    workers = [Worker("gw0"), Worker("gw1")]
    for worker in workers:
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, COLLECTION)
    scheduler.schedule()
    assert all(worker.sent for worker in workers)  # both start at once, before any report
    # Each worker runs what it was sent; as it finishes a test it is sent more.
    done = {id(w): 0 for w in workers}
    while any(done[id(w)] < len(w.sent) for w in workers):
        for worker in workers:
            if done[id(worker)] < len(worker.sent):
                scheduler.mark_test_complete(worker, worker.sent[done[id(worker)]])
                done[id(worker)] += 1
    ran = [[COLLECTION[i] for i in w.sent] for w in workers]
    assert sorted(ran[0] + ran[1]) == sorted(COLLECTION)  # every test, once
    labs_worker, other = (ran[0], ran[1]) if LABS[0] in ran[0] else (ran[1], ran[0])
    assert labs_worker == LABS
    assert other == [nodeid for nodeid in COLLECTION if not with_the_labs(nodeid)]


def test_lab_tests_and_the_colliding_files_are_told_apart() -> None:
    in_lab_process = [*COLLECTION[:5], "tests/integration/test_osimage_boot.py::test_vm"]
    assert in_lab_process == LABS
    for path in WITH_THE_LABS:
        assert (ROOT / path).is_file(), path


# What puts an integration or tools test beside a lab (tests/conftest.py says why): the
# lab lock (directly or through the boot network's helpers), podman, a VM, a loop device.
COLLIDES = re.compile(
    r"HOST_LOCK|tests\.peers\.bootnet|\bpodman\b|qemu-system|losetup|osimage\.boot"
)


@pytest.mark.parametrize("folder", ["tests/integration", "tests/tools"])
def test_every_file_that_collides_with_a_lab_runs_with_the_labs(folder: str) -> None:
    colliding = {
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / folder).glob("test_*.py"))
        if COLLIDES.search(path.read_text())
    }
    listed = {path for path in WITH_THE_LABS if path.startswith(folder + "/")}
    assert colliding == listed


def test_scripts_test_runs_two_processes_when_asked_with_a_pinned_xdist() -> None:
    """One process by default (two slowed the labs past their waits on 2 cores),
    LABCTL_TEST_WORKERS processes when set."""
    script = (ROOT / "scripts" / "test").read_text()
    assert '-n "${LABCTL_TEST_WORKERS:-0}"' in script
    lock = (ROOT / "requirements.lock").read_text().splitlines()
    assert any(line.startswith("pytest-xdist==") for line in lock)
    assert any(line.startswith("execnet==") for line in lock)
    assert '"pytest-xdist' in (ROOT / "pyproject.toml").read_text()
