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
from labctl.errors import LabctlError, UsageError
from labctl.programs import BIRD1, calico_build_dir
from labctl.sim import feeds
from labctl.sim import platform as sim_platform
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

    # sim up gave the nodes podman and the etcd, Ceph and monitoring images: every
    # runtime is the inventory's (no override).
    record = json.loads((state / "sim.json").read_text())
    record["engine"] = {
        "images": ["quay.io/coreos/etcd:v3.4.23", "quay.io/ceph/ceph:v16.2.15"],
        "runtimes": ["etcd", "ceph", "monitoring"],
    }
    (state / "sim.json").write_text(json.dumps(record))
    done = runner.invoke(app, ["sim", "env", "--state-dir", str(state)])
    assert done.exit_code == 0, done.output
    # calico-node's confd and CNI plugin where scripts/build-calico.sh built them.
    built = Path(os.environ.get("LABCTL_CALICO_NODE") or calico_build_dir(os.environ, os.getuid()))
    with_calico_node = (
        Path(BIRD1).exists()
        and os.environ.get("LABCTL_CALICO_NODE") != "0"
        and (built / "bin" / "calico-node").exists()
    )
    assert done.output.splitlines() == [
        "export LABCTL_SSH_USER=core",
        f"export LABCTL_SSH_KNOWN_HOSTS={state / 'known_hosts'}",
        f"export LABCTL_SSH_IDENTITY={state / 'id_ed25519'}",
        "export LABCTL_CEPH_CONFIG=mon_data_avail_warn=5",
        "export LABCTL_SWITCH_PLATFORM=frr",
        "export LABCTL_KUBE_RUNTIME=pods",
        f"export LABCTL_KUBE_BIN_DIR='{bin_dir()}'",
        *([f"export LABCTL_CALICO_BIRD={BIRD1}"] if Path(BIRD1).exists() else []),
        *([f"export LABCTL_CALICO_NODE={built}"] if with_calico_node else []),
        *(
            [f"export LABCTL_CALICO_FELIX={os.environ['LABCTL_CALICO_FELIX']}"]
            if with_calico_node and os.environ.get("LABCTL_CALICO_FELIX")
            else []
        ),
        "export LABCTL_CONTAINER_ENGINE=podman",
    ]


def _calico_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A stand-in BIRD and a calico-node build where `sim env` looks for them: (bird, build)."""
    bird = tmp_path / "bird"
    bird.write_text("")
    monkeypatch.setenv("LABCTL_CALICO_BIRD", str(bird))
    monkeypatch.setenv("LABCTL_CALICO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LABCTL_CALICO_NODE", raising=False)
    built = calico_build_dir(os.environ, os.getuid())
    (built / "bin").mkdir(parents=True)
    (built / "bin" / "calico-node").write_text("")
    return bird, built


def _sim_env(state: Path) -> dict[str, str]:
    """What `labctl sim env` exports, by name, as printed."""
    done = runner.invoke(app, ["sim", "env", "--state-dir", str(state)])
    assert done.exit_code == 0, done.output
    lines = [line.removeprefix("export ") for line in done.stdout.splitlines()]
    return dict(line.split("=", 1) for line in lines)


def test_calico_nodes_confd_runs_on_the_nodes_by_default_and_0_turns_it_off(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bird, built = _calico_build(tmp_path, monkeypatch)

    def exported() -> dict[str, str]:
        return _sim_env(state)

    # Built: the nodes run calico-node's confd and CNI plugin, nobody asked.
    assert exported()["LABCTL_CALICO_NODE"] == str(built)
    # 0: labctl's own bird.cfg stays on the nodes, and the platform reads 0 as "none".
    monkeypatch.setenv("LABCTL_CALICO_NODE", "0")
    assert "LABCTL_CALICO_NODE" not in exported()
    off = sim_platform.from_environ({"LABCTL_CALICO_BIRD": str(bird), "LABCTL_CALICO_NODE": "0"})
    assert off.calico_node is None and not off.confd_takes_over()
    # Not built: said, and the nodes keep labctl's bird.cfg.
    monkeypatch.delenv("LABCTL_CALICO_NODE")
    (built / "bin" / "calico-node").unlink()
    done = runner.invoke(app, ["sim", "env", "--state-dir", str(state)])
    assert "LABCTL_CALICO_NODE" not in done.stdout
    assert f"calico-node is not built in {built}" in done.stderr


def test_felix_runs_on_the_nodes_as_labctl_calico_felix_says(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LABCTL_CALICO_FELIX (1 or 0) is passed on by `sim env` with calico-node's build and
    read by the platform; Felix never runs without the build (a mode of calico-node);
    any other value is refused, naming the variable."""
    _calico_build(tmp_path, monkeypatch)

    def exported() -> dict[str, str]:
        return {k: v.strip("'") for k, v in _sim_env(state).items()}

    for asked in ("1", "0"):
        monkeypatch.setenv("LABCTL_CALICO_FELIX", asked)
        env = exported()
        assert env["LABCTL_CALICO_FELIX"] == asked
        assert sim_platform.from_environ(env).calico_felix is (asked == "1")
    monkeypatch.delenv("LABCTL_CALICO_FELIX")
    env = exported()
    assert "LABCTL_CALICO_FELIX" not in env
    assert sim_platform.from_environ(env).calico_felix is sim_platform.FELIX_BY_DEFAULT
    on = sim_platform.from_environ({**env, "LABCTL_CALICO_FELIX": "1"})
    assert "and Felix" in " ".join(on.differences())
    for node in ("0", ""):
        without = {**env, "LABCTL_CALICO_NODE": node, "LABCTL_CALICO_FELIX": "1"}
        assert sim_platform.from_environ(without).calico_felix is False
    with pytest.raises(UsageError, match="LABCTL_CALICO_FELIX is 'yes'; it must be 0, 1"):
        sim_platform.from_environ({**env, "LABCTL_CALICO_FELIX": "yes"})


def test_a_lab_brought_up_without_podman_runs_etcd_from_the_host_and_says_so(
    state: Path,
) -> None:
    done = runner.invoke(app, ["sim", "env", "--state-dir", str(state)])
    assert done.exit_code == 0, done.output
    assert "export LABCTL_ETCD_RUNTIME=host" in done.stdout.splitlines()
    assert "export LABCTL_CEPH_RUNTIME=host" in done.stdout.splitlines()
    assert "export LABCTL_MONITORING_RUNTIME=host" in done.stdout.splitlines()
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
