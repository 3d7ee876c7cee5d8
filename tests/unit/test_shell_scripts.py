"""The shell scripts labctl ships (labctl/data/scripts, labctl/sim/*.sh) as code reads them."""

from __future__ import annotations

import re
import subprocess

import pytest

from labctl.data import shell
from labctl.render.kubernetes import common
from labctl.sim.render import kubernetes as shared_kernel
from tests.conftest import ROOT

SCRIPTS = sorted(p.stem for p in (ROOT / "labctl" / "data" / "scripts").glob("*.sh"))


def test_a_body_is_the_script_without_its_header() -> None:
    text = shell.script("ceph-osd-prepare")
    assert text.startswith("#!/bin/sh\n# One bluestore OSD")
    body = shell.body("ceph-osd-prepare")
    assert text.endswith(body)
    assert body.startswith("\nset -e\nceph=$1 ")
    assert "shellcheck" not in body and not body.lstrip("\n").startswith("#")


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_script_parses_and_its_body_is_what_sh_c_runs(name: str) -> None:
    """sh -n reads every script and every body (what ``sh -c`` gets) without a syntax
    error; a header is only comments, so removing it removes no command."""
    shebang = shell.script(name).splitlines()[0]
    program = "bash" if shebang.endswith("bash") else "sh"
    for text in (shell.script(name), shell.body(name)):
        done = subprocess.run([program, "-n", "-c", text], capture_output=True, text=True)
        assert done.returncode == 0, f"{name}: {done.stderr}"
    header = shell.script(name)[: -len(shell.body(name)) or None]
    assert all(line.startswith("#") for line in header.splitlines()), header


def _cgroup_lines(text: str) -> str:
    match = re.search(
        r"^if ! grep -q ' cgroup' /proc/self/mounts; then\n.*?^fi\n", text, re.M | re.S
    )
    assert match, text
    return match.group(0)


def test_both_wrappers_mount_the_cgroups_with_the_same_lines() -> None:
    """The kubelet's and containerd's wrappers each mount the cgroup hierarchies (each
    is one file on the node); the two copies stay the same."""
    assert _cgroup_lines(shared_kernel.host_wrapper()) == _cgroup_lines(
        shared_kernel.containerd_wrapper()
    )


def test_the_kubelet_wrapper_names_the_kubelets_directory_and_containerds_socket() -> None:
    """The wrapper is a file of its own, so the paths it shares with the renders are
    checked here rather than pasted in."""
    wrapper = shared_kernel.host_wrapper()
    assert f"mount --make-shared {common.KUBELET_DIR}\n" in wrapper
    assert f"[ ! -S {common.CONTAINERD_SOCKET} ]" in wrapper
