"""A command that needs a program that is not installed says which Debian package has it.

labctl installed with pipx or a wheel brings none of the programs a few commands
run; the message must name the package, never end in FileNotFoundError.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from labctl import programs
from labctl.errors import DriverError, LabctlError
from labctl.pki.cfssl_backend import CfsslBackend
from labctl.sim import lab
from tests.conftest import ROOT


@pytest.fixture
def empty_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))


def test_a_missing_program_names_its_debian_package(empty_path: None) -> None:
    with pytest.raises(LabctlError) as caught:
        programs.require("ipmi_sim", "it simulates the BMCs")
    assert str(caught.value) == (
        "ipmi_sim is not installed (it simulates the BMCs); it is in the Debian package "
        "openipmi (apt-get install openipmi)"
    )
    with pytest.raises(LabctlError, match=r"snmpd is not installed.*apt-get install snmpd"):
        programs.require("/nonexistent/sbin/snmpd")


def test_a_present_program_is_found() -> None:
    assert Path(programs.require("sh")).name == "sh"


def test_the_cfssl_backend_names_golang_cfssl(empty_path: None, tmp_path: Path) -> None:
    with pytest.raises(DriverError, match=r"apt-get install golang-cfssl"):
        CfsslBackend()._run(["gencert", "-initca", "csr.json"], str(tmp_path))


def test_every_package_is_one_setup_installs() -> None:
    """scripts/setup.sh (what CI and the demo run) installs what the messages name."""
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    match = re.search(r"DEBIAN_PACKAGES=\(\n(.*?)\n\)", setup, re.S)
    assert match, "scripts/setup.sh: DEBIAN_PACKAGES=( ... ) not found"
    installed = set(match.group(1).split())
    assert set(programs.PACKAGES.values()) - installed == set()


def test_the_simulated_lab_says_it_needs_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(LabctlError, match=r"needs Linux \(this is darwin\)"):
        lab.require_root()


def test_the_simulated_lab_says_it_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(LabctlError, match=r"needs root: .*sudo -E"):
        lab.require_root()
