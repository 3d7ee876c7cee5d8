"""What only reads the simulated lab's record: sim ssh's command line, env, the feed hook.

No lab is brought up: a state directory with a hand-written ``sim.json`` is
what these commands read, and ``os.execvp`` is caught instead of run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labctl.cli.main import app
from labctl.errors import LabctlError
from labctl.programs import BIRD1
from labctl.sim import feeds
from labctl.sim.record import read_record

runner = CliRunner()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    state = tmp_path / "sim"
    state.mkdir()
    record = {
        "netns": [],
        "routes": [],
        "pids": {"bmc:fohn": 4242},
        "login_user": "core",
        "nodes": {
            "fohn": {"netns": "lab-1a2b-fohn", "ssh": "10.31.1.11"},
            "wind": {"netns": "lab-1a2b-wind", "ssh": "10.31.1.13"},
        },
    }
    (state / "sim.json").write_text(json.dumps(record))
    return state


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every argv labctl would have exec'd, instead of exec'ing it."""
    seen: list[list[str]] = []

    def execvp(file: str, argv: list[str]) -> None:
        assert file == argv[0]
        seen.append(list(argv))

    monkeypatch.setattr(os, "execvp", execvp)
    return seen


def ssh(state: Path, *args: str) -> list[str]:
    return [
        "ssh", "-i", str(state / "id_ed25519"), "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={state / 'known_hosts'}", *args,
    ]  # fmt: skip


def test_ssh_without_a_command_is_an_interactive_shell(state: Path, execs: list[list[str]]) -> None:
    done = runner.invoke(app, ["sim", "ssh", "--state-dir", str(state), "wind"])
    assert done.exit_code == 0, done.output
    assert execs == [ssh(state, "root@10.31.1.13")]


@pytest.mark.parametrize(
    "words",
    [["ls", "-l"], ["--", "ls", "-l"], ["hostname"], ["cat", "--state-dir", "-h", "--help"]],
)
def test_ssh_passes_the_command_through_after_double_dash(
    state: Path, execs: list[list[str]], words: list[str]
) -> None:
    done = runner.invoke(app, ["sim", "ssh", "--state-dir", str(state), "fohn", *words])
    assert done.exit_code == 0, done.output
    command = words[1:] if words[0] == "--" else words
    assert execs == [ssh(state, "root@10.31.1.11", "--", *command)]


def test_ssh_to_an_unknown_node_names_the_nodes(state: Path, execs: list[list[str]]) -> None:
    done = runner.invoke(app, ["sim", "ssh", "--state-dir", str(state), "fhon", "ls"])
    assert done.exit_code == 1 and execs == []
    assert str(done.exception) == "no simulated node fhon; nodes: fohn, wind"


def test_env_comes_from_the_record(state: Path) -> None:
    from labctl.kubernetes.binaries import bin_dir

    # sim up gave the nodes podman and the etcd and Ceph images: both runtimes are the
    # inventory's (no override).
    record = json.loads((state / "sim.json").read_text())
    record["engine"] = {
        "images": ["quay.io/coreos/etcd:v3.4.23", "quay.io/ceph/ceph:v16.2.15"],
        "runtimes": ["etcd", "ceph"],
    }
    (state / "sim.json").write_text(json.dumps(record))
    done = runner.invoke(app, ["sim", "env", "--state-dir", str(state)])
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == [
        "export LABCTL_SSH_USER=core",
        f"export LABCTL_SSH_KNOWN_HOSTS={state / 'known_hosts'}",
        f"export LABCTL_SSH_IDENTITY={state / 'id_ed25519'}",
        "export LABCTL_CEPH_CONFIG=mon_data_avail_warn=5",
        "export LABCTL_SWITCH_PLATFORM=frr",
        "export LABCTL_KUBE_RUNTIME=pods",
        f"export LABCTL_KUBE_BIN_DIR='{bin_dir()}'",
        *([f"export LABCTL_CALICO_BIRD={BIRD1}"] if Path(BIRD1).exists() else []),
        "export LABCTL_CONTAINER_ENGINE=podman",
    ]


def test_a_lab_brought_up_without_podman_runs_etcd_from_the_host_and_says_so(
    state: Path,
) -> None:
    done = runner.invoke(app, ["sim", "env", "--state-dir", str(state)])
    assert done.exit_code == 0, done.output
    assert "export LABCTL_ETCD_RUNTIME=host" in done.stdout.splitlines()
    assert "export LABCTL_CEPH_RUNTIME=host" in done.stdout.splitlines()
    assert "LABCTL_CONTAINER_ENGINE" not in done.stdout
    assert "podman was missing at sim up" in done.stderr


@pytest.mark.parametrize("command", [["env"], ["status"], ["ssh", "fohn"], ["console", "fohn"]])
def test_every_reader_says_the_same_when_there_is_no_lab(
    tmp_path: Path, execs: list[list[str]], command: list[str]
) -> None:
    empty = tmp_path / "nothing-here"
    done = runner.invoke(app, ["sim", command[0], "--state-dir", str(empty), *command[1:]])
    assert done.exit_code == 1 and execs == []
    assert str(done.exception) == f"no simulated lab in {empty}; run `labctl sim up`"


def test_a_damaged_record_is_said_not_a_traceback(state: Path) -> None:
    (state / "sim.json").write_text('{"nodes": {"fohn": ')  # torn mid-write by hand
    with pytest.raises(LabctlError, match=r"sim\.json is damaged"):
        read_record(state)
    (state / "sim.json").write_text("[]")
    with pytest.raises(LabctlError, match=r"sim\.json is damaged"):
        read_record(state)


def test_the_feed_hook_finds_the_bmc_through_the_record(state: Path) -> None:
    assert feeds._bmc_pid(state, "fohn") == 4242
    assert feeds._bmc_pid(state, "wind") is None
    restarted = state / "bmcs" / "fohn" / "daemon.pid"  # a BMC a PDU brought back
    restarted.parent.mkdir(parents=True)
    restarted.write_text("777")
    assert feeds._bmc_pid(state, "fohn") == 777
